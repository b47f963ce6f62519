#!/usr/bin/env python3
"""One build against another: redlock-bench's lock cycle from two binaries, interleaved.

Each round runs both binaries (alternating which goes first) for the 64-task throughput and
the p50 of single cycles with the caller on the masters' loop, fenced or not. Prints one JSON
line per series with the medians and the median of the per-round ratios B / A, so that a
change's cost is read within one run on one set of masters.

usage: ab-rounds.py BENCH_A BENCH_B HOST:PORT,... [ROUNDS] [on|off]
"""
import json, statistics, subprocess, sys

bench_a, bench_b, masters = sys.argv[1], sys.argv[2], sys.argv[3]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 7
fencing = sys.argv[5] if len(sys.argv) > 5 else "on"
series = {
    "cycles/s at 64 tasks": (["--mode", "throughput", "--concurrency", "64", "--cycles", "30000"], "cycles_per_s"),
    "latency p50 us, caller on the loop": (["--mode", "latency", "--cycles", "2000", "--executor", "loop"], "p50_us"),
}


def run(bench, arguments):
    out = subprocess.run([bench, "lock", "--masters", masters, "--fencing", fencing] + arguments,
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]


results = {name: {"a": [], "b": []} for name in series}
for round_number in range(rounds):
    for name, (arguments, field) in series.items():
        for side in (("a", "b") if round_number % 2 == 0 else ("b", "a")):
            results[name][side].append(run(bench_a if side == "a" else bench_b, arguments)[field])
for name, values in results.items():
    ratios = [b / a for a, b in zip(values["a"], values["b"])]
    print(json.dumps({"series": name, "fencing": fencing, "rounds": rounds, "median_a": round(statistics.median(values["a"]), 1),
                      "median_b": round(statistics.median(values["b"]), 1),
                      "median_ratio_b_over_a": round(statistics.median(ratios), 3),
                      "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)]}))
