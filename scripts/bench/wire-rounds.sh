#!/usr/bin/env bash
# RedisWire against redis-benchmark on one master, interleaved over rounds (this host is
# shared and noisy: compare within a round). Prints one line per round, then the medians.
#
# Every measurement starts from an empty keyspace (FLUSHALL): redis-benchmark's `-t set` keys
# never expire, so without it each round's redis-benchmark runs against the keys of every
# round before it and slows down round by round, which flatters the share.
#
# Besides the issue's baseline (`-t set`: plain SET, no NX, no expiry), each round also runs
# redis-benchmark with exactly our command, `SET key v NX PX 10000`, as a like-for-like
# reference: the expiry costs the server CPU per command too.
#
# usage: [BENCH_BIN_DIR=dir] scripts/bench/wire-rounds.sh [ROUNDS]   (after make test)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
# BENCH_BIN_DIR=dir measures a redlock-bench built elsewhere (an older commit, for an A/B).
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  bin=$BENCH_BIN_DIR
else
  swift build -c release --product redlock-bench >/dev/null
  bin=$(swift build -c release --show-bin-path)
fi
dir=$(mktemp -d /tmp/locklock-wire-rounds-XXXX)
master=$(scripts/start-masters.sh 1 "$dir/masters")
trap 'scripts/stop-masters.sh "$dir/masters"; rm -rf "$dir"' EXIT
port=${master##*:}
flush() { redis-cli -p "$port" flushall >/dev/null; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['$1'])"; }
# redis-benchmark --csv: "test","rps","avg_ms","min_ms","p50_ms",...
rb() { flush; redis-benchmark -h 127.0.0.1 -p "$port" --csv "$@" | tail -1 | tr -d '"' | cut -d, -f"$field_index"; }
ours() { flush; "$bin/redlock-bench" wire --master "$master" "$@"; }
for round in $(seq 1 "$rounds"); do
  rb_pipelined=$(field_index=2; rb -c 64 -P 16 -n 1000000 -r 1000000 -t set)
  rb_same=$(field_index=2; rb -c 64 -P 16 -n 1000000 -r 1000000 SET 'key:__rand_int__' v NX PX 10000)
  rb_single=$(field_index=5; rb -c 1 -n 30000 -r 1000000 -t set)
  loop_tp=$(ours --mode throughput --concurrency 64 --ops 300000 --executor loop | field ops_per_s)
  pool_tp=$(ours --mode throughput --concurrency 64 --ops 300000 --executor global | field ops_per_s)
  loop_p50=$(ours --mode latency --ops 30000 --executor loop | field p50_us)
  pool_p50=$(ours --mode latency --ops 30000 --executor global | field p50_us)
  python3 -c "
rbp, rbn, rbs = $rb_pipelined, $rb_same, $rb_single * 1000
print('{\"round\": $round, \"throughput_share_loop\": %.2f, \"throughput_share_pool\": %.2f, \"share_of_same_command_loop\": %.2f, \"p50_ratio_loop\": %.2f, \"p50_ratio_pool\": %.2f, \"ops_per_s_loop\": %d, \"ops_per_s_pool\": %d, \"redis_benchmark_P16\": %d, \"redis_benchmark_P16_set_nx_px\": %d, \"redis_benchmark_c1_p50_us\": %.0f}' % ($loop_tp / rbp, $pool_tp / rbp, $loop_tp / rbn, $loop_p50 / rbs, $pool_p50 / rbs, $loop_tp, $pool_tp, rbp, rbn, rbs))
"
done | tee "$dir/rounds.txt"
python3 - "$dir/rounds.txt" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
keys = ("throughput_share_loop", "throughput_share_pool", "share_of_same_command_loop", "p50_ratio_loop", "p50_ratio_pool")
print(json.dumps({"mode": "wire-rounds", "rounds": len(rows),
                  **{k: statistics.median(r[k] for r in rows) for k in keys},
                  **{k + "_range": [min(r[k] for r in rows), max(r[k] for r in rows)] for k in keys}}))
PY
