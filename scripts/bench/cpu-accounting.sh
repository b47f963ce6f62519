#!/usr/bin/env bash
# Where the 2 cores go: CPU time (user + system, from /proc) per lock cycle and per HTTP
# request, split between the 5 masters, the client or server, and wrk. On a shared host the
# rates swing; CPU per operation swings less, and its sum bounds the rate the cores allow.
# Prints one JSON line per measurement, then, per HTTP round, the ratio of lock requests to
# /livez that the CPU predicts and its ceiling: the same with a server that spent on a lock
# request only its /livez cost plus the library client's CPU per operation (half a fenced
# cycle's, median of the lock rounds above), which no adapter can undercut.
# usage: scripts/bench/cpu-accounting.sh [ROUNDS]   (after make test; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
swift build -c release --product redlock-bench >/dev/null
swift build -c release --product locklock >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/locklock-cpu-XXXX)
masters=$(scripts/start-masters.sh 5 "$dir/masters")
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; scripts/stop-masters.sh "$dir/masters"; rm -rf "$dir"' EXIT
master_pids=$(cat "$dir"/masters/*/redis.pid)
ticks=$(getconf CLK_TCK)

# Summed utime + stime, in clock ticks, of the given processes (all their threads).
cpu_ticks() { local sum=0 pid; for pid in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$sum"; }
per_op_us() { python3 -c "print(round($1 * 1e6 / $ticks / $2, 1))"; }

for round in $(seq 1 "$rounds"); do
  for fencing in on off; do
    before=$(cpu_ticks $master_pids)
    /usr/bin/time -f '%U %S' -o "$dir/time" "$bin/redlock-bench" lock --masters "$masters" --mode throughput \
      --concurrency 64 --cycles 60000 --fencing "$fencing" > "$dir/out"
    after=$(cpu_ticks $master_pids)
    rate=$(tail -1 "$dir/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cycles_per_s"])')
    client_us=$(awk '{print ($1 + $2) * 1e6 / 60000}' "$dir/time")
    echo "{\"measure\":\"lock cycle\",\"round\":$round,\"fencing\":\"$fencing\",\"cycles_per_s\":$rate,\"masters_cpu_us\":$(per_op_us $((after - before)) 60000),\"client_cpu_us\":$client_us}"
  done
done | tee "$dir/lock"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/locklock" serve --masters "$masters" --port "$port" --anonymous-rate 0 --anonymous-names 0 > "$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.05; done
http_round() {  # label, wrk arguments...
  local label=$1; shift
  local s0 m0 s1 m1 requests rate p99
  s0=$(cpu_ticks "$server"); m0=$(cpu_ticks $master_pids)
  /usr/bin/time -f '%U %S' -o "$dir/time" wrk -t2 -c64 -d8s --latency "$@" > "$dir/wrk"
  s1=$(cpu_ticks "$server"); m1=$(cpu_ticks $master_pids)
  requests=$(awk '/requests in/ {print $1}' "$dir/wrk")
  rate=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk")
  echo "{\"measure\":\"$label\",\"requests_per_s\":$rate,\"p99\":\"$p99\",\"server_cpu_us\":$(per_op_us $((s1 - s0)) "$requests"),\"masters_cpu_us\":$(per_op_us $((m1 - m0)) "$requests"),\"wrk_cpu_us\":$(awk -v n="$requests" '{print ($1 + $2) * 1e6 / n}' "$dir/time")}"
}
for round in $(seq 1 "$rounds"); do
  http_round "http lock request" -s scripts/bench/post-delete.lua "http://127.0.0.1:$port"
  http_round "http GET /livez" "http://127.0.0.1:$port/livez"
done | tee "$dir/http"
python3 - "$dir/lock" "$dir/http" <<'PY'
import json, statistics, sys
lock = [json.loads(line) for line in open(sys.argv[1])]
http = [json.loads(line) for line in open(sys.argv[2])]
operation = statistics.median(r["client_cpu_us"] for r in lock if r["fencing"] == "on") / 2
for number, (request, livez) in enumerate(zip(http[0::2], http[1::2]), 1):
    livez_cpu = livez["server_cpu_us"] + livez["masters_cpu_us"] + livez["wrk_cpu_us"]
    request_cpu = request["server_cpu_us"] + request["masters_cpu_us"] + request["wrk_cpu_us"]
    leanest = livez["server_cpu_us"] + operation + request["masters_cpu_us"] + request["wrk_cpu_us"]
    print(json.dumps({"measure": "http lock requests / livez", "round": number,
                      "measured": round(request["requests_per_s"] / livez["requests_per_s"], 3),
                      "predicted_by_cpu": round(livez_cpu / request_cpu, 3),
                      "ceiling": round(livez_cpu / leanest, 3), "library_operation_cpu_us": round(operation, 1)}))
PY
