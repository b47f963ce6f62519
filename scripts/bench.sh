#!/usr/bin/env bash
# Every benchmark of the project in one run, on the same 5 local masters, so the ratios
# compare like with like: redis-benchmark and the fan-out floor as baselines, then
# redlock-bench wire/lock/handover, then the HTTP server under wrk and its hand-over, then
# the floors under the targets. Prints one JSON line each.
# usage: scripts/bench.sh  (after make test; needs redis-tools and wrk, which make installs)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product redlock-bench >/dev/null
swift build -c release --product locklock >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/locklock-bench-XXXX)
masters=$(scripts/start-masters.sh 5 "$dir/masters")
trap 'scripts/stop-masters.sh "$dir/masters"; rm -rf "$dir"' EXIT
first=${masters%%,*}
port=${first##*:}
echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(redis-server --version | cut -d' ' -f3), $(date -u +%F)"
# redis-benchmark --csv: "test","rps","avg_ms","min_ms","p50_ms","p95_ms","p99_ms","max_ms"
csv() { tail -1 | tr -d '"' | awk -F',' '{printf "{\"rps\":%s,\"p50_us\":%.0f,\"p99_us\":%.0f}\n", $2, $5*1000, $7*1000}'; }
# Each wire measurement starts from an empty keyspace (see scripts/bench/wire-rounds.sh).
flush() { redis-cli -p "$port" flushall >/dev/null; }
flush; echo -n '{"bench":"redis-benchmark -c1 SET"} '; redis-benchmark -h 127.0.0.1 -p "$port" -c 1 -n 50000 -t set -r 1000000 --csv | csv
flush; echo -n '{"bench":"redis-benchmark -c64 -P16 SET"} '; redis-benchmark -h 127.0.0.1 -p "$port" -c 64 -P 16 -n 1000000 -t set -r 1000000 --csv | csv
flush; echo -n '{"bench":"redis-benchmark -c64 -P16 SET NX PX 10000 (our command)"} '
redis-benchmark -h 127.0.0.1 -p "$port" --csv -c 64 -P 16 -n 1000000 -r 1000000 SET 'key:__rand_int__' v NX PX 10000 | csv
for executor in global loop; do
  flush; "$bin/redlock-bench" wire --master "$first" --mode latency --ops 50000 --executor "$executor" | tail -1
done
for executor in global loop; do
  flush; "$bin/redlock-bench" wire --master "$first" --mode throughput --concurrency 64 --ops 500000 --executor "$executor" | tail -1
done
flush; echo -n '{"bench":"redis-benchmark -c64 -P16 SET, again"} '; redis-benchmark -h 127.0.0.1 -p "$port" -c 64 -P 16 -n 1000000 -t set -r 1000000 --csv | csv
flush
# Lock-cycle latency: the fan-out floors (scripts/bench/safe-floor.py: SET and DEL, and the
# same network work with Locklock's Lua scripts) and redlock-bench, interleaved over rounds
# with ratios taken within each round.
python3 scripts/bench/latency-rounds.py "$bin" "$masters" 5 3000
# What fencing costs: fenced against unfenced, throughput at 64 tasks and p50 on the loop, in
# interleaved rounds with the ratio taken within each round.
python3 scripts/bench/fencing-ratio.py "$bin" "$masters" 7
# Beyond the mutex, beside the fenced mutex's cycles in the same run: 64 tasks taking and
# returning permits of one semaphore of 8, and readers' shares of one read-write lock.
for round in 1 2; do
  for primitive in mutex semaphore read; do
    "$bin/redlock-bench" lock --masters "$masters" --mode throughput --concurrency 64 --cycles 50000 --primitive "$primitive" --permits 8 | tail -1
  done
done
# Hand-over of one contended lock between 16 waiters (one client, and one client each),
# beside an uncontended acquisition and cycle measured in the same run.
for clients in 1 16; do
  "$bin/redlock-bench" handover --masters "$masters" --waiters 16 --clients "$clients" --handovers 2000 | tail -1
done
scripts/bench-server.sh 20 2
# The floors under the fencing and HTTP targets: one master's CPU per cycle for each way of
# writing the acquisition, and CPU per lock cycle and per HTTP request with the lock/livez
# ratio the CPU allows (each script starts its own servers).
python3 scripts/bench/server-cost.py 4
scripts/bench/cpu-accounting.sh 2
