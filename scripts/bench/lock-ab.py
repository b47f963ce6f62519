#!/usr/bin/env python3
"""A/B of two redlock-bench binaries on the same masters, in interleaved rounds.

Each round runs both binaries once per series (latency p50 on the loop and from the task
pool, throughput at 64 tasks; fenced and unfenced), alternating which goes first, so that the
host's noise falls on both alike. Prints one JSON line per series with the medians and the
median of the per-round ratios B/A.

usage: lock-ab.py BIN_DIR_A BIN_DIR_B HOST:PORT,... [ROUNDS]
"""
import json, statistics, subprocess, sys

bin_a, bin_b, masters = sys.argv[1], sys.argv[2], sys.argv[3]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5


def run(bin_dir, arguments):
    out = subprocess.run([f"{bin_dir}/redlock-bench", "lock", "--masters", masters] + arguments,
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]


series = {}
for fencing in ("off", "on"):
    for executor in ("loop", "global"):
        series[f"latency p50 us, fencing={fencing}, executor={executor}"] = (
            ["--mode", "latency", "--cycles", "3000", "--executor", executor, "--fencing", fencing], "p50_us")
    series[f"cycles/s at 64 tasks, fencing={fencing}"] = (
        ["--mode", "throughput", "--concurrency", "64", "--cycles", "40000", "--fencing", fencing], "cycles_per_s")

results = {name: ([], []) for name in series}
for round_number in range(rounds):
    for name, (arguments, field) in series.items():
        order = [(0, bin_a), (1, bin_b)] if round_number % 2 == 0 else [(1, bin_b), (0, bin_a)]
        for slot, bin_dir in order:
            results[name][slot].append(run(bin_dir, arguments)[field])
for name, (a, b) in results.items():
    print(json.dumps({"series": name, "rounds": rounds, "median_a": round(statistics.median(a), 1),
                      "median_b": round(statistics.median(b), 1),
                      "median_ratio_b_over_a": round(statistics.median(y / x for x, y in zip(a, b)), 3)}))
