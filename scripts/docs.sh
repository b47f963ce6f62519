#!/usr/bin/env bash
# Builds the Redlock DocC catalog with warnings as errors, so that a broken symbol link or an
# undocumented parameter fails. Output: .build/docs/Redlock.doccarchive
set -euo pipefail
cd "$(dirname "$0")/.."
if ! out=$(swift package dump-symbol-graph --minimum-access-level public 2>&1); then echo "$out" >&2; exit 1; fi
mkdir -p .build/docs
graphs=$(mktemp -d)
trap 'rm -rf "$graphs"' EXIT
cp "$(swift build --show-bin-path)/../symbolgraph/Redlock.symbols.json" "$graphs/"
docc convert Sources/Redlock/Redlock.docc \
  --additional-symbol-graph-dir "$graphs" \
  --fallback-display-name Redlock --fallback-bundle-identifier dev.locklock.Redlock \
  --output-dir .build/docs/Redlock.doccarchive --warnings-as-errors
