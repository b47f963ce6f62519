"""Side-by-side acquire+release benchmark: redlock-py, pottery and Locklock's Swift client.

Every library runs the same workloads against the same masters in one run:
  sequential: one caller, one acquire+release cycle at a time;
  concurrent: CONCURRENCY callers (threads for the Python libraries, tasks for Swift).
Each cycle locks a fresh resource name (no contention), TTL 10 s, no retries.
Writes a marked section of Docs/benchmarks.md and Docs/images/bench-peers.png.

usage: python peers.py MASTERS(h:p,...) REDLOCK_BENCH_BINARY
"""
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from docs_section import replace_section, save_figure

CONCURRENCY = 16
CYCLES = {"sequential": 2000, "concurrent": 4000}
SWIFT_CYCLES = {"sequential": 10000, "concurrent": 40000}
START, END = "<!-- bench-peers:start -->", "<!-- bench-peers:end -->"


def run_threads(cycle, threads, total):
    """Runs `total` cycles over `threads` threads; returns (latencies in µs, elapsed s)."""
    per_thread = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]
    samples = [[] for _ in range(threads)]
    errors = []

    def worker(index):
        try:
            for n in range(per_thread[index]):
                begin = time.perf_counter()
                cycle(f"{index}:{n}")
                samples[index].append((time.perf_counter() - begin) * 1e6)
        except Exception as error:  # a failed cycle invalidates the run; report it
            errors.append(repr(error))

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} cycles failed, first: {errors[0]}")
    return [s for part in samples for s in part], elapsed


def redlock_py_cycle(masters):
    from redlock import Redlock
    dlm = Redlock([{"host": h, "port": int(p), "db": 0} for h, p in masters], retry_count=1)
    prefix = f"bench:redlock-py:{uuid.uuid4().hex[:8]}:"

    def cycle(name):
        lock = dlm.lock(prefix + name, 10_000)
        if not lock:
            raise RuntimeError("redlock-py did not acquire a free lock")
        dlm.unlock(lock)
    return cycle


def pottery_cycle(masters):
    from pottery import Redlock
    from redis import Redis
    clients = {Redis(host=h, port=int(p)) for h, p in masters}
    prefix = f"bench:pottery:{uuid.uuid4().hex[:8]}:"

    def cycle(name):
        lock = Redlock(key=prefix + name, masters=clients, auto_release_time=10.0)
        if not lock.acquire(blocking=False):
            raise RuntimeError("pottery did not acquire a free lock")
        lock.release()
    return cycle


def python_library(name, make_cycle, masters):
    results = {}
    cycle = make_cycle(masters)
    run_threads(cycle, 1, 100)  # warm-up: connections, scripts
    for workload, threads in (("sequential", 1), ("concurrent", CONCURRENCY)):
        latencies, elapsed = run_threads(cycle, threads, CYCLES[workload])
        results[workload] = summary(latencies, elapsed)
    return results


def swift_library(binary, masters_text):
    results = {}
    for workload in ("sequential", "concurrent"):
        with tempfile.TemporaryDirectory() as directory:
            samples = os.path.join(directory, "samples.txt")
            mode = "latency" if workload == "sequential" else "throughput"
            command = [binary, "lock", "--masters", masters_text, "--mode", mode, "--concurrency", str(CONCURRENCY),
                       "--cycles", str(SWIFT_CYCLES[workload]), "--fencing", "off", "--samples-file", samples]
            line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            reported = json.loads(line)
            with open(samples) as handle:
                latencies = [float(x) for x in handle.read().split()]
            results[workload] = summary(latencies, len(latencies) / reported["cycles_per_s"])
    return results


def summary(latencies, elapsed):
    ordered = sorted(latencies)

    def percentile(p):
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
    return {"count": len(ordered), "rate": len(ordered) / elapsed, "p50": percentile(0.5), "p90": percentile(0.9),
            "p99": percentile(0.99), "samples": ordered}


def fmt_us(value):
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def versions():
    from importlib.metadata import version
    return {name: version(name) for name in ("redlock-py", "pottery", "redis", "matplotlib")}


def machine():
    cores = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        mem_gib = int(meminfo.readline().split()[1]) / 1024 / 1024
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2].removeprefix("v=")
    return f"{cores} cores, {mem_gib:.0f} GiB, {platform.system()} {platform.release()}, Redis {redis}, Python {platform.python_version()}"


def write_markdown(results, masters_count, date):
    ours = results["locklock (Swift)"]
    lines = [START, "",
             f"Measured by `scripts/bench-peers` on {date}: {machine()}; {masters_count} local masters with no",
             "persistence, sharing the cores with the clients. Package versions: " +
             ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
             f"Each cycle acquires a fresh resource (TTL 10 s, no retries) and releases it; concurrent means "
             f"{CONCURRENCY} threads (Python) or {CONCURRENCY} tasks (Swift). Locklock runs unfenced here, as the",
             "peers hand out no fencing tokens.", "",
             "| library | workload | cycles | cycles/s | p50 | p90 | p99 | Locklock's rate is | Locklock's p50 is |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        for workload in ("sequential", "concurrent"):
            r = result[workload]
            mine = ours[workload]
            rate_ratio = "—" if result is ours else f"{mine['rate'] / r['rate']:.1f}x"
            p50_ratio = "—" if result is ours else f"{mine['p50'] / r['p50']:.2f}x"
            lines.append(f"| {name} | {workload} | {r['count']} | {r['rate']:,.0f} | {fmt_us(r['p50'])} | {fmt_us(r['p90'])} "
                         f"| {fmt_us(r['p99'])} | {rate_ratio} | {p50_ratio} |")
    lines += ["", "![Latency distribution of one acquire+release cycle](images/bench-peers.png)", "", END]
    replace_section(START, END, "Side by side with other Redlock clients", lines)


def write_plot(results, date):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, workload in zip(axes, ("sequential", "concurrent")):
        for name, result in results.items():
            samples = result[workload]["samples"]
            fractions = [(i + 1) / len(samples) for i in range(len(samples))]
            axis.plot(samples, fractions, label=f"{name} ({result[workload]['rate']:,.0f}/s)")
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("acquire + release latency (µs, log scale)")
        axis.set_title(f"{workload}" + (f" ({CONCURRENCY} callers)" if workload == "concurrent" else " (1 caller)"))
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("fraction of cycles at or below")
    figure.suptitle(f"Redlock clients, 5 local masters — scripts/bench-peers, {date}", fontsize=10)
    save_figure(figure, "bench-peers.png")


def main():
    masters_text, binary = sys.argv[1], sys.argv[2]
    masters = [tuple(a.rsplit(":", 1)) for a in masters_text.split(",")]
    date = time.strftime("%Y-%m-%d", time.gmtime())
    results = {
        "locklock (Swift)": swift_library(binary, masters_text),
        "redlock-py": python_library("redlock-py", redlock_py_cycle, masters),
        "pottery": python_library("pottery", pottery_cycle, masters),
    }
    for name, result in results.items():
        for workload, r in result.items():
            print(json.dumps({"library": name, "workload": workload, "cycles": r["count"], "cycles_per_s": round(r["rate"]),
                              "p50_us": round(r["p50"], 1), "p90_us": round(r["p90"], 1), "p99_us": round(r["p99"], 1)}))
    write_markdown(results, len(masters), date)
    write_plot(results, date)
    print("wrote Docs/benchmarks.md (bench-peers section) and Docs/images/bench-peers.png")


if __name__ == "__main__":
    main()
