#!/usr/bin/env bash
# Starts N throwaway redis-server masters on free loopback ports (no persistence) and
# prints "h:p,h:p,..." ; stop them with scripts/stop-masters.sh DIR.
# usage: scripts/start-masters.sh N DIR
set -euo pipefail
n=${1:-5}; dir=${2:-$(mktemp -d /tmp/locklock-bench-XXXX)}
mkdir -p "$dir"
addresses=()
for i in $(seq 1 "$n"); do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/$port" \
    --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" >/dev/null
  addresses+=("127.0.0.1:$port")
done
for a in "${addresses[@]}"; do
  for _ in $(seq 1 100); do redis-cli -p "${a##*:}" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
(IFS=,; echo "${addresses[*]}")
