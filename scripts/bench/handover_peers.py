"""Hand-over benchmark: 16 waiters contend for one lock; each holder holds it 1 ms and
releases. redlock-py and pottery at their default retry settings, Locklock with wake-ups
(one client, as the Python threads share one process; and 16 clients, one per waiter).

Reports per library: the hand-over latency (the release call returning to the next waiter's
acquire returning), hand-overs per second, and the masters' commands per hand-over (each
script's own calls included). Writes a marked section of Docs/benchmarks.md and
Docs/images/bench-handover.png.

usage: python handover_peers.py MASTERS(h:p,...) REDLOCK_BENCH_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from docs_section import replace_section, save_figure

WAITERS = 16
HOLD = 0.001
HANDOVERS = {"python": 200, "swift": 2000}
START, END = "<!-- bench-handover:start -->", "<!-- bench-handover:end -->"


def commands_processed(masters):
    from redis import Redis
    total = 0
    for host, port in masters:
        total += Redis(host=host, port=int(port)).info("stats")["total_commands_processed"]
    return total


def run_handovers(acquire, release, masters, total):
    """WAITERS threads loop acquire/hold/release on one lock until `total` hand-overs."""
    state = {"last_release": None, "last_acquisition": None, "latencies": [], "done": False}
    guard = threading.Lock()
    errors = []

    def worker():
        try:
            while True:
                lock = acquire()
                if lock is None:  # gave up after its retries: try again, as a waiter would
                    with guard:
                        if state["done"]:
                            return
                    continue
                acquired = time.perf_counter()
                with guard:
                    state["last_acquisition"] = acquired
                    if state["last_release"] is not None:
                        state["latencies"].append((acquired - state["last_release"]) * 1e6)
                        state["last_release"] = None
                    if len(state["latencies"]) >= total:
                        state["done"] = True
                    finished = state["done"]
                time.sleep(HOLD)
                release(lock)
                released = time.perf_counter()
                with guard:
                    if state["last_acquisition"] is not None and state["last_acquisition"] > acquired:
                        state["latencies"].append(0.0)
                    else:
                        state["last_release"] = released
                if finished:
                    return
                # To the back of the line, as in redlock-bench handover.
                for _ in range(10_000):
                    with guard:
                        if state["done"] or (state["last_acquisition"] or released) > released:
                            break
                    time.sleep(0.001)
        except Exception as error:
            errors.append(repr(error))
            with guard:
                state["done"] = True

    before = commands_processed(masters)
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(WAITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"a waiter failed: {errors[0]}")
    commands = commands_processed(masters) - before
    latencies = sorted(state["latencies"])
    return summary(latencies, elapsed, commands)


def summary(latencies, elapsed, commands):
    def percentile(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))]
    return {"count": len(latencies), "rate": len(latencies) / elapsed, "p50": percentile(0.5), "p99": percentile(0.99),
            "commands": commands / max(len(latencies), 1), "samples": latencies}


def redlock_py(masters):
    from redlock import Redlock
    dlm = Redlock([{"host": h, "port": int(p), "db": 0} for h, p in masters])  # defaults: 3 retries, 0.2 s apart
    name = f"bench:handover:redlock-py:{uuid.uuid4().hex[:8]}"
    return run_handovers(lambda: dlm.lock(name, 10_000) or None, dlm.unlock, masters, HANDOVERS["python"])


def pottery(masters):
    from pottery import Redlock
    from redis import Redis
    clients = {Redis(host=h, port=int(p)) for h, p in masters}
    name = f"bench:handover:pottery:{uuid.uuid4().hex[:8]}"

    def acquire():
        lock = Redlock(key=name, masters=clients, auto_release_time=10.0)
        return lock if lock.acquire() else None  # defaults: blocking, retries until it gets it
    return run_handovers(acquire, lambda lock: lock.release(), masters, HANDOVERS["python"])


def locklock(binary, masters_text, clients):
    with tempfile.TemporaryDirectory() as directory:
        samples = os.path.join(directory, "samples.txt")
        command = [binary, "handover", "--masters", masters_text, "--waiters", str(WAITERS), "--clients", str(clients),
                   "--hold-ms", "1", "--handovers", str(HANDOVERS["swift"]), "--samples-file", samples]
        reported = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        with open(samples) as handle:
            latencies = [float(x) for x in handle.read().split()]
    result = summary(latencies, len(latencies) / reported["handovers_per_s"], reported["commands_per_handover"] * len(latencies))
    result["uncontended_acquire_p50"] = reported["uncontended_acquire_p50_us"]
    return result


def fmt_us(value):
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f} s"
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def write_markdown(results, date):
    ours = results["locklock, 1 client"]
    lines = [START, "",
             f"Measured by `scripts/bench-peers` on {date}: {WAITERS} waiters contend for one lock on 5 local masters; each",
             "holder holds it 1 ms, releases it, and waits until another has taken it before it contends again.",
             "redlock-py and pottery run at their default retry settings (they poll); Locklock is woken by the",
             f"release. Uncontended acquire p50 of Locklock in the same run: {fmt_us(ours['uncontended_acquire_p50'])}.", "",
             "| library | hand-overs | hand-over p50 | hand-over p99 | hand-overs/s | masters' commands per hand-over |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['count']} | {fmt_us(r['p50'])} | {fmt_us(r['p99'])} | {r['rate']:,.0f} | {r['commands']:.0f} |")
    lines += ["", "![Hand-over latency of one contended lock](images/bench-handover.png)", "", END]
    replace_section(START, END, "Hand-over of a contended lock, side by side", lines)


def write_plot(results, date):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for name, result in results.items():
        samples = [max(s, 1.0) for s in result["samples"]]
        fractions = [(i + 1) / len(samples) for i in range(len(samples))]
        axis.plot(samples, fractions, label=f"{name} (p50 {fmt_us(result['p50'])})")
    axis.set_xscale("log")
    axis.set_xlabel("hand-over latency (µs, log scale): release returns → next waiter's acquire returns")
    axis.set_ylabel("fraction of hand-overs at or below")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    figure.suptitle(f"{WAITERS} waiters on one lock, 5 local masters — scripts/bench-peers, {date}", fontsize=10)
    save_figure(figure, "bench-handover.png")


def main():
    masters_text, binary = sys.argv[1], sys.argv[2]
    masters = [tuple(a.rsplit(":", 1)) for a in masters_text.split(",")]
    date = time.strftime("%Y-%m-%d", time.gmtime())
    results = {
        "locklock, 1 client": locklock(binary, masters_text, 1),
        f"locklock, {WAITERS} clients": locklock(binary, masters_text, WAITERS),
        "redlock-py": redlock_py(masters),
        "pottery": pottery(masters),
    }
    for name, r in results.items():
        print(json.dumps({"library": name, "handovers": r["count"], "handovers_per_s": round(r["rate"]), "p50_us": round(r["p50"], 1),
                          "p99_us": round(r["p99"], 1), "commands_per_handover": round(r["commands"], 1)}))
    write_markdown(results, date)
    write_plot(results, date)
    print("wrote Docs/benchmarks.md (bench-handover section) and Docs/images/bench-handover.png")


if __name__ == "__main__":
    main()
