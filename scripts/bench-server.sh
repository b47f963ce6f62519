#!/usr/bin/env bash
# Load benchmark of `locklock serve` over 5 local masters, in interleaved rounds of the
# default server (one event loop per core) and `--event-loops 1` (every request on the
# masters' loop). Each round: wrk (POST then DELETE on fresh UUIDs) at 64 connections beside
# the same server's `GET /livez` (no Redis), one connection's p50 of each, the p99 at 8
# connections, and the server's CPU per lock request and resident memory. Then, on the
# default server: the hand-over of a lock from a DELETE to a waiting POST
# (scripts/bench/http-handover.py) and one connection at a time from Python
# (scripts/bench/http-per-connection.py). Builds release first.
# usage: scripts/bench-server.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
rounds=${2:-2}
swift build -c release --product locklock >/dev/null
bin=$(swift build -c release --show-bin-path)/locklock
dir=$(mktemp -d /tmp/locklock-bench-server-XXXX)
masters=$(scripts/start-masters.sh 5 "$dir/masters")
server=""
stop_server() { if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""; fi; }
trap 'stop_server; scripts/stop-masters.sh "$dir/masters"; rm -rf "$dir"' EXIT
# Starts `serve` with extra arguments; sets $server and $url.
start_server() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" serve --masters "$masters" --port "$port" --anonymous-rate 0 --anonymous-names 0 "$@" > "$dir/server.log" 2>&1 &
  server=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do curl -sf "$url/livez" >/dev/null && return; sleep 0.05; done
  echo "serve did not start: $(cat "$dir/server.log")" >&2; exit 1
}
# A wrk latency percentile ("50%", "99%") in microseconds.
percentile_us() { awk -v p="$1" '$1 == p {v = $2; u = 1; if (v ~ /us$/) u = 1; else if (v ~ /ms$/) u = 1000; else if (v ~ /s$/) u = 1000000; sub(/[a-z]+$/, "", v); printf "%.0f", v * u}' "$2"; }
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
# The server's user + system CPU so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# One round of every wrk row against the running server, printed as JSON lines.
measure() {
  local loops=$1 before after
  wrk -t2 -c64 -d"${seconds}s" --latency "$url/livez" > "$dir/livez.txt"
  before=$(cpu_ticks)
  wrk -t2 -c64 -d"${seconds}s" --latency -s scripts/bench/post-delete.lua "$url" > "$dir/wrk.txt"
  after=$(cpu_ticks)
  local rss_kib non2xx
  rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$dir/wrk.txt")
  wrk -t1 -c1 -d5s --latency "$url/livez" > "$dir/livez1.txt"
  wrk -t1 -c1 -d5s --latency -s scripts/bench/post-delete.lua "$url" > "$dir/lock1.txt"
  wrk -t1 -c8 -d10s --latency -s scripts/bench/post-delete.lua "$url" > "$dir/lock8.txt"
  printf '{"mode":"http","event_loops":"%s","connections":64,"requests_per_s":%s,"livez_requests_per_s":%s,"ratio_to_livez":%.3f,"p99_us":%s,"non_2xx":%s,"server_cpu_us_per_request":%.0f,"server_rss_mib":%.1f,"masters":5}\n' \
    "$loops" "$(rate "$dir/wrk.txt")" "$(rate "$dir/livez.txt")" "$(echo "$(rate "$dir/wrk.txt") / $(rate "$dir/livez.txt")" | bc -l)" \
    "$(percentile_us 99% "$dir/wrk.txt")" "${non2xx:-0}" \
    "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / ($(rate "$dir/wrk.txt") * $seconds)" | bc -l)" "$(echo "$rss_kib / 1024" | bc -l)"
  printf '{"mode":"http","event_loops":"%s","connections":1,"lock_request_p50_us":%s,"livez_p50_us":%s}\n' \
    "$loops" "$(percentile_us 50% "$dir/lock1.txt")" "$(percentile_us 50% "$dir/livez1.txt")"
  printf '{"mode":"http","event_loops":"%s","connections":8,"lock_requests_per_s":%s,"lock_request_p99_us":%s}\n' \
    "$loops" "$(rate "$dir/lock8.txt")" "$(percentile_us 99% "$dir/lock8.txt")"
}
for round in $(seq 1 "$rounds"); do
  start_server
  measure "per-core"
  stop_server
  start_server --event-loops 1
  measure 1
  stop_server
done
start_server
python3 scripts/bench/http-handover.py "${url##*:}" 200
# One connection at a time: connections alternate between the server's event loops, and
# only those on the masters' loop make no thread hop (scripts/bench/http-per-connection.py).
python3 scripts/bench/http-per-connection.py "${url##*:}" 4 500
stop_server
