#!/usr/bin/env bash
# Load benchmark of `locklock serve` over 5 local masters: wrk (POST then DELETE on fresh
# UUIDs) at 64 connections, the server's resident memory, and the hand-over of a lock from a
# DELETE to a waiting POST (scripts/bench/http-handover.py). Builds release first.
# usage: scripts/bench-server.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
swift build -c release --product locklock >/dev/null
bin=$(swift build -c release --show-bin-path)/locklock
dir=$(mktemp -d /tmp/locklock-bench-server-XXXX)
masters=$(scripts/start-masters.sh 5 "$dir/masters")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --masters "$masters" --port "$port" --anonymous-rate 0 > "$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; scripts/stop-masters.sh "$dir/masters"; rm -rf "$dir"' EXIT
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.05; done
wrk -t2 -c64 -d"${seconds}s" --latency -s scripts/bench/post-delete.lua "http://127.0.0.1:$port" | tee "$dir/wrk.txt"
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$server/status)
rps=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $5}' "$dir/wrk.txt")
python3 scripts/bench/http-handover.py "$port" 200
printf '{"mode":"http","connections":64,"requests_per_s":%s,"p99":"%s","non_2xx":%s,"server_rss_mib":%.1f,"masters":5}\n' "$rps" "$p99" "${non2xx:-0}" "$(echo "$rss_kib / 1024" | bc -l)"
