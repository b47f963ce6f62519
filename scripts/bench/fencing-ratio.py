#!/usr/bin/env python3
"""What fencing costs: redlock-bench fenced against unfenced, in interleaved rounds.

Each round measures, for fencing off and on (alternating which goes first), the 64-task
throughput and the p50 of single cycles with the caller on the masters' loop. Prints one JSON
line per series with the medians and the median of the per-round ratios fenced / unfenced.

usage: fencing-ratio.py BIN_DIR HOST:PORT,... [ROUNDS]
"""
import json, statistics, subprocess, sys

bin_dir, masters = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
series = {
    "cycles/s at 64 tasks": (["--mode", "throughput", "--concurrency", "64", "--cycles", "30000"], "cycles_per_s"),
    "latency p50 us, caller on the loop": (["--mode", "latency", "--cycles", "2000", "--executor", "loop"], "p50_us"),
}


def run(arguments, fencing):
    out = subprocess.run([f"{bin_dir}/redlock-bench", "lock", "--masters", masters, "--fencing", fencing] + arguments,
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]


results = {name: {"off": [], "on": []} for name in series}
for round_number in range(rounds):
    for name, (arguments, field) in series.items():
        for fencing in (("off", "on") if round_number % 2 == 0 else ("on", "off")):
            results[name][fencing].append(run(arguments, fencing)[field])
for name, values in results.items():
    ratios = [on / off for off, on in zip(values["off"], values["on"])]
    print(json.dumps({"series": name, "rounds": rounds, "median_unfenced": round(statistics.median(values["off"]), 1),
                      "median_fenced": round(statistics.median(values["on"]), 1),
                      "median_ratio_fenced_over_unfenced": round(statistics.median(ratios), 3),
                      "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)]}))
