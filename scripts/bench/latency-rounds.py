#!/usr/bin/env python3
"""Lock-cycle latency against the fan-out floors, interleaved, so noise hits every series alike.

This host is shared: back-to-back runs of one benchmark vary by up to 2x. Each round runs
every series once, briefly, in turn; the ratio to the floor is taken within a round, and the
medians over rounds are printed as one JSON line per series.

usage: latency-rounds.py BIN_DIR HOST:PORT,... [ROUNDS] [CYCLES]
"""
import json, pathlib, statistics, subprocess, sys

here = pathlib.Path(__file__).resolve().parent
bin_dir, masters = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
cycles = sys.argv[4] if len(sys.argv) > 4 else "3000"


def last_json(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def bench(fencing, executor):
    return last_json([f"{bin_dir}/redlock-bench", "lock", "--masters", masters, "--mode", "latency",
                      "--cycles", cycles, "--executor", executor, "--fencing", fencing])[-1]["p50_us"]


series = {}
for _ in range(rounds):
    floors = {line["variant"]: line["p50_us"] for line in last_json(["python3", str(here / "safe-floor.py"), masters, cycles])}
    row = {"fanout-floor (SET, DEL)": floors["plain"]}
    row["nio-floor (SET, DEL over bare SwiftNIO channels)"] = last_json(
        [f"{bin_dir}/redlock-bench", "nio-floor", "--masters", masters, "--cycles", cycles])[-1]["p50_us"]
    for variant in ("unfenced", "fenced"):
        row[f"safe-floor {variant} (Lua release)"] = floors[variant]
    for fencing in ("off", "on"):
        for executor in ("loop", "global"):
            row[f"locklock fencing={fencing} executor={executor}"] = bench(fencing, executor)
    for name, p50 in row.items():
        series.setdefault(name, []).append((p50, p50 / row["fanout-floor (SET, DEL)"]))
for name, values in series.items():
    print(json.dumps({"mode": "latency-rounds", "series": name, "rounds": rounds, "cycles": int(cycles),
                      "median_p50_us": round(statistics.median(v[0] for v in values), 1),
                      "median_ratio_to_fanout_floor": round(statistics.median(v[1] for v in values), 2),
                      "ratios": [round(v[1], 2) for v in values]}))
