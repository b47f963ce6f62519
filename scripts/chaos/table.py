#!/usr/bin/env python3
"""Turns locklock-chaos's JSON lines (stdin) into the Markdown tables of Docs/safety.md: the
mutex's scenarios, then the semaphore's, read-write lock's and election's.

    $(swift build --show-bin-path)/locklock-chaos run | scripts/chaos/table.py

A scenario that ran more than once (an unsafe one whose violation needed another run) is
shown by its last run.
"""
import json
import sys

rows = {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    result = json.loads(line)
    rows[result["scenario"]] = result

mutex = {name: r for name, r in rows.items() if r.get("primitive", "mutex") == "mutex"}
beyond = {name: r for name, r in rows.items() if name not in mutex}


def shown(r):
    return "yes" if r["passed"] else "NO: " + "; ".join(r.get("failures", []))


print("| scenario | expect | injections | violations | lost updates | stale tokens accepted | late writes accepted "
      "| acquired, baseline / fault | availability | acquire p50 / p99 ms | outcomes | shown |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for name, r in mutex.items():
    success = r["acquire_success"]
    latency = r["fault_acquire_ms"]
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
    print(f"| {name} | {r['expect']} | {r['injections']} | {r['violations']} | {r['lost_updates']} "
          f"| {r['stale_tokens_accepted']} | {r['late_writes_accepted']} | {success['baseline']} / {success['fault']} "
          f"| {r['availability']} | {latency['p50']} / {latency['p99']} | {outcomes} "
          f"| {shown(r)} |")
if beyond:
    # The semaphore, read-write lock and election scenarios: their own counts.
    print()
    print("| scenario | expect | injections | violations | most holders at once | term regressions | lost updates "
          "| stale tokens accepted | writes refused | availability | shown |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in beyond.items():
        print(f"| {name} | {r['expect']} | {r['injections']} | {r['violations']} | {r['most_at_once']} "
              f"| {r['term_regressions']} | {r['lost_updates']} | {r['stale_tokens_accepted']} | {r['writes_rejected']} "
              f"| {r['availability']} | {shown(r)} |")
