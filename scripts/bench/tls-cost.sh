#!/usr/bin/env bash
# What TLS to the masters costs: 5 local masters, each listening in plain TCP and with TLS
# (certificates made here with openssl), and the same redlock-bench runs over each,
# interleaved over rounds so that both see the same machine. Prints one JSON line each.
# usage: scripts/bench/tls-cost.sh [ROUNDS]   (after make test)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
swift build -c release --product redlock-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/locklock-tls-bench-XXXX)
trap 'for pid in "$dir"/*/redis.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; done; rm -rf "$dir"' EXIT
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem 2>/dev/null
cd - >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain=(); tls=()
for _ in 1 2 3 4 5; do
  port=$(free_port); tls_port=$(free_port)
  mkdir -p "$dir/$port"
  redis-server --port "$port" --tls-port "$tls_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/$port" \
    --tls-cert-file "$dir/server.pem" --tls-key-file "$dir/server.key" --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no \
    --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" >/dev/null
  plain+=("127.0.0.1:$port"); tls+=("rediss://127.0.0.1:$tls_port")
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
plain_list=$(IFS=,; echo "${plain[*]}"); tls_list=$(IFS=,; echo "${tls[*]}")
for round in $(seq 1 "$rounds"); do
  "$bin/redlock-bench" wire --master "${plain[0]}" --mode latency --ops 20000 | tail -1
  "$bin/redlock-bench" wire --master "${tls[0]}" --tls-ca "$dir/ca.pem" --mode latency --ops 20000 | tail -1
  "$bin/redlock-bench" lock --masters "$plain_list" --mode latency --cycles 5000 | tail -1
  "$bin/redlock-bench" lock --masters "$tls_list" --tls-ca "$dir/ca.pem" --mode latency --cycles 5000 | tail -1
  "$bin/redlock-bench" lock --masters "$plain_list" --mode throughput --concurrency 64 --cycles 60000 | tail -1
  "$bin/redlock-bench" lock --masters "$tls_list" --tls-ca "$dir/ca.pem" --mode throughput --concurrency 64 --cycles 60000 | tail -1
done
