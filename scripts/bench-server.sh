#!/usr/bin/env bash
# Load benchmark of `locklock serve` over 5 local masters: wrk (POST then DELETE on fresh
# UUIDs) at 64 connections beside the same server's `GET /livez` (no Redis) in the same run,
# one connection's p50 of each (with wrk, and per connection from Python), the p99 at 8
# connections, the server's resident memory, and the hand-over of a lock from a DELETE to a
# waiting POST (scripts/bench/http-handover.py).
# Builds release first.
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
url="http://127.0.0.1:$port"
# A wrk latency percentile ("50%", "99%") in microseconds.
percentile_us() { awk -v p="$1" '$1 == p {v = $2; u = 1; if (v ~ /us$/) u = 1; else if (v ~ /ms$/) u = 1000; else if (v ~ /s$/) u = 1000000; sub(/[a-z]+$/, "", v); printf "%.0f", v * u}' "$2"; }
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
wrk -t2 -c64 -d"${seconds}s" --latency "$url/livez" > "$dir/livez.txt"
wrk -t2 -c64 -d"${seconds}s" --latency -s scripts/bench/post-delete.lua "$url" | tee "$dir/wrk.txt"
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$server/status)
non2xx=$(awk '/Non-2xx/ {print $5}' "$dir/wrk.txt")
wrk -t1 -c1 -d5s --latency "$url/livez" > "$dir/livez1.txt"
wrk -t1 -c1 -d5s --latency -s scripts/bench/post-delete.lua "$url" > "$dir/lock1.txt"
wrk -t1 -c8 -d10s --latency -s scripts/bench/post-delete.lua "$url" > "$dir/lock8.txt"
python3 scripts/bench/http-handover.py "$port" 200
# One connection at a time: connections alternate between the server's event loops, and
# only those on the masters' loop make no thread hop (scripts/bench/http-per-connection.py).
python3 scripts/bench/http-per-connection.py "$port" 4 500
printf '{"mode":"http","connections":64,"requests_per_s":%s,"livez_requests_per_s":%s,"ratio_to_livez":%.3f,"p99_us":%s,"non_2xx":%s,"server_rss_mib":%.1f,"masters":5}\n' \
  "$(rate "$dir/wrk.txt")" "$(rate "$dir/livez.txt")" "$(echo "$(rate "$dir/wrk.txt") / $(rate "$dir/livez.txt")" | bc -l)" \
  "$(percentile_us 99% "$dir/wrk.txt")" "${non2xx:-0}" "$(echo "$rss_kib / 1024" | bc -l)"
printf '{"mode":"http","connections":1,"lock_request_p50_us":%s,"livez_p50_us":%s}\n' "$(percentile_us 50% "$dir/lock1.txt")" "$(percentile_us 50% "$dir/livez1.txt")"
printf '{"mode":"http","connections":8,"lock_requests_per_s":%s,"lock_request_p99_us":%s}\n' "$(rate "$dir/lock8.txt")" "$(percentile_us 99% "$dir/lock8.txt")"
