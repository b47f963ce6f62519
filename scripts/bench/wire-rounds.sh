#!/usr/bin/env bash
# RedisWire against redis-benchmark on one master, interleaved over rounds (this host is
# shared and noisy: compare within a round). Prints one line per round, then the medians.
# usage: scripts/bench/wire-rounds.sh [ROUNDS]   (after make test)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
swift build -c release --product redlock-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/locklock-wire-rounds-XXXX)
master=$(scripts/start-masters.sh 1 "$dir/masters")
trap 'scripts/stop-masters.sh "$dir/masters"; rm -rf "$dir"' EXIT
port=${master##*:}
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['$1'])"; }
rb() { redis-benchmark -h 127.0.0.1 -p "$port" "$@" -t set -r 1000000 --csv | tail -1 | tr -d '"' | cut -d, -f"$field_index"; }
for round in $(seq 1 "$rounds"); do
  rb_pipelined=$(field_index=2; rb -c 64 -P 16 -n 1000000)
  rb_single=$(field_index=5; rb -c 1 -n 30000)
  loop_tp=$("$bin/redlock-bench" wire --master "$master" --mode throughput --concurrency 64 --ops 300000 --executor loop | field ops_per_s)
  pool_tp=$("$bin/redlock-bench" wire --master "$master" --mode throughput --concurrency 64 --ops 300000 --executor global | field ops_per_s)
  loop_p50=$("$bin/redlock-bench" wire --master "$master" --mode latency --ops 30000 --executor loop | field p50_us)
  pool_p50=$("$bin/redlock-bench" wire --master "$master" --mode latency --ops 30000 --executor global | field p50_us)
  python3 -c "
rbp, rbs = $rb_pipelined, $rb_single * 1000
print('{\"round\": $round, \"throughput_share_loop\": %.2f, \"throughput_share_pool\": %.2f, \"p50_ratio_loop\": %.2f, \"p50_ratio_pool\": %.2f, \"redis_benchmark_P16\": %d, \"redis_benchmark_c1_p50_us\": %.0f}' % ($loop_tp / rbp, $pool_tp / rbp, $loop_p50 / rbs, $pool_p50 / rbs, rbp, rbs))
"
done | tee "$dir/rounds.txt"
python3 - "$dir/rounds.txt" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(json.dumps({"mode": "wire-rounds", "rounds": len(rows), **{k: statistics.median(r[k] for r in rows) for k in
      ("throughput_share_loop", "throughput_share_pool", "p50_ratio_loop", "p50_ratio_pool")}}))
PY
