#!/usr/bin/env bash
# Stops the masters started by scripts/start-masters.sh in DIR and removes DIR.
set -u
dir=$1
for pidfile in "$dir"/*/redis.pid; do [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null; done
rm -rf "$dir"
