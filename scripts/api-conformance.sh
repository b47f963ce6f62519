#!/usr/bin/env bash
# Validates the served OpenAPI document (openapi-spec-validator) and runs schemathesis
# against a live `locklock serve` over 3 throwaway masters: no 5xx, no response that breaks
# the schema. Needs a built `locklock` (debug by default; LOCKLOCK=path to override).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/st" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check openapi-spec-validator 'schemathesis>=4,<5'
fi
locklock=${LOCKLOCK:-$(swift build --show-bin-path)/locklock}
dir=$(mktemp -d /tmp/locklock-test-redis-conformance-XXXX)
masters=$(scripts/start-masters.sh 3 "$dir/masters")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=conformance-pro-key
printf '{"tenants":[{"name":"conformance","plan":"pro","key_sha256":"%s"}]}' "$("$locklock" hash-key "$key")" > "$dir/tenants.json"
"$locklock" serve --masters "$masters" --port "$port" --tenants "$dir/tenants.json" --anonymous-rate 0 --anonymous-names 0 --pro-rate 0 --developer-rate 0 --max-wait 0.5 > "$dir/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; scripts/stop-masters.sh "$dir/masters"; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$port/v1/api/openapi.json" > "$dir/openapi.json"
"$venv/bin/openapi-spec-validator" "$dir/openapi.json"
"$venv/bin/st" run "http://127.0.0.1:$port/v1/api/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --header "Authorization: Bearer $key" \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-30}" --seed 42 --no-color --request-timeout 20
