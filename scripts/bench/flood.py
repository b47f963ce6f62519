#!/usr/bin/env python3
"""What one abusive address costs `locklock serve` and its masters. For each binary given
(to compare two builds in one run, on the same 5 masters), prints one JSON line per measure:

- body: server CPU (utime + stime of the serve process) and median wall time per request for
  GET /livez, a plain POST of a fresh UUID lock, and the worst anonymous body under the size
  limit (64 KiB of empty objects in `data`, refused 403), throttling off;
- refusals: wrk floods two replicas from one address at the default anonymous rate (shared
  throttling) with malformed bodies, so the throttling is all the masters are asked for: the
  masters' commands per 429 (INFO commandstats), in all (the allowed requests' checks
  included) and those of the checks that refused (3 commands each: EVALSHA, TIME, GET);
- memory (with --memory-seconds S, the newest binary only): S seconds of fresh-UUID POSTs from
  one address at the default limits, then the growth of the masters' used_memory, in all and
  per master.

usage: scripts/bench/flood.py [--memory-seconds S] LOCKLOCK_BIN [OTHER_LOCKLOCK_BIN]"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TICKS = os.sysconf("SC_CLK_TCK")
WORST = '{"data":[' + ",".join(["{}"] * 21000) + "]}"
JSON = {"Content-Type": "application/json"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def serve(binary, masters, *arguments):
    port = free_port()
    process = subprocess.Popen(
        [binary, "serve", "--port", str(port), "--masters", masters, *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{binary} serve did not become ready")


def stop(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def request(connection, method, path, body=None):
    start = time.perf_counter()
    connection.request(method, path, body=body, headers=JSON if body is not None else {})
    response = connection.getresponse()
    response.read()
    return response.status, time.perf_counter() - start


def redis(masters, *command):
    totals = []
    for address in masters.split(","):
        host, port = address.rsplit(":", 1)
        totals.append(subprocess.run(["redis-cli", "-h", host, "-p", port, *command], capture_output=True, text=True, check=True).stdout)
    return totals


def commands(masters):
    total = 0
    for stats in redis(masters, "INFO", "commandstats"):
        for line in stats.splitlines():
            if line.startswith("cmdstat_") and not line.startswith(("cmdstat_info:", "cmdstat_config", "cmdstat_flushall")):
                total += int(line.split("calls=")[1].split(",")[0])
    return total


def used_memory(masters):
    return [int(line.split(":")[1]) for stats in redis(masters, "INFO", "memory") for line in stats.splitlines() if line.startswith("used_memory:")]


def unlimited(binary):
    """Throttling off, and (where the build has it) no quota of anonymous lock names."""
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    return ["--anonymous-rate", "0"] + (["--anonymous-names", "0"] if "--anonymous-names" in help_text else [])


def body_costs(binary, masters):
    process, port = serve(binary, masters, *unlimited(binary))
    connection = http.client.HTTPConnection("127.0.0.1", port)
    kinds = {
        "livez": (2000, lambda: request(connection, "GET", "/livez"), 200),
        "plain_post": (500, lambda: request(connection, "POST", f"/v1/api/lock/uuid/{uuid.uuid4()}", '{"expires_in":30}'), 201),
        "worst_anonymous_body": (100, lambda: request(connection, "POST", f"/v1/api/lock/uuid/{uuid.uuid4()}", WORST), 403),
    }
    result = {"bench": "flood body cost", "binary": binary}
    for name, (count, send, expected) in kinds.items():
        for _ in range(20):
            send()  # warm up
        before = cpu_seconds(process.pid)
        walls = []
        for _ in range(count):
            status, wall = send()
            assert status == expected, (name, status)
            walls.append(wall)
        result[name] = {
            "cpu_ms_per_request": round((cpu_seconds(process.pid) - before) * 1000 / count, 3),
            "p50_ms": round(statistics.median(walls) * 1000, 3),
        }
    result["worst_over_plain_cpu"] = round(result["worst_anonymous_body"]["cpu_ms_per_request"] / max(result["plain_post"]["cpu_ms_per_request"], 1e-9), 1)
    result["worst_over_livez_cpu"] = round(result["worst_anonymous_body"]["cpu_ms_per_request"] / max(result["livez"]["cpu_ms_per_request"], 1e-9), 1)
    stop(process)
    redis(masters, "FLUSHALL")
    return result


def command_calls(masters):
    calls = {}
    for stats in redis(masters, "INFO", "commandstats"):
        for line in stats.splitlines():
            if line.startswith("cmdstat_"):
                name = line.split(":")[0][len("cmdstat_"):]
                calls[name] = calls.get(name, 0) + int(line.split("calls=")[1].split(",")[0])
    return calls


def refusals(binary, masters, seconds=5):
    """wrk floods both replicas at once with malformed bodies from one address: each request
    is throttled, then refused 429 or (allowed) answered 400 without reaching the masters."""
    replicas = [serve(binary, masters) for _ in range(2)]
    redis(masters, "CONFIG", "RESETSTAT")
    script = os.path.join(HERE, "flood-post.lua")
    floods = [
        subprocess.Popen(
            ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{port}/v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _, port in replicas
    ]
    requests = 0
    for flood in floods:
        output = flood.communicate()[0]
        requests += int(next(line for line in output.splitlines() if "requests in" in line).split()[0])
    calls = command_calls(masters)
    for process, _ in replicas:
        stop(process)
    redis(masters, "FLUSHALL")
    # The throttling script SETs only when it allows: its other runs refused.
    scripts = calls.get("evalsha", 0) + calls.get("eval", 0)
    allowed = calls.get("set", 0)
    refused = requests - allowed
    spent = sum(count for name, count in calls.items() if not name.startswith(("info", "config", "flushall")))
    refusing_calls = scripts - allowed
    return {
        "bench": "flood refusals",
        "binary": binary,
        "requests": requests,
        "requests_per_s": round(requests / seconds),
        "allowed": allowed,
        "refused_429": refused,
        "master_commands": spent,
        "master_commands_per_429": round(spent / max(refused, 1), 3),
        "throttle_checks_that_refused": refusing_calls,
        "master_commands_of_refusing_checks_per_429": round(3 * refusing_calls / max(refused, 1), 4),
    }


def memory(binary, masters, seconds):
    process, port = serve(binary, masters)
    connection = http.client.HTTPConnection("127.0.0.1", port)
    redis(masters, "FLUSHALL")
    before = used_memory(masters)
    statuses = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status, _ = request(connection, "POST", f"/v1/api/lock/uuid/{uuid.uuid4()}", '{"expires_in":3600}')
        statuses[status] = statuses.get(status, 0) + 1
    after = used_memory(masters)
    keys = sum(int(line.split("keys=")[1].split(",")[0]) for info in redis(masters, "INFO", "keyspace") for line in info.splitlines() if "keys=" in line)
    stop(process)
    redis(masters, "FLUSHALL")
    growth = [a - b for a, b in zip(after, before)]
    return {
        "bench": "flood memory of one anonymous address",
        "binary": binary,
        "seconds": seconds,
        "statuses": statuses,
        "keys_on_masters": keys,
        "memory_growth_bytes": sum(growth),
        "memory_growth_bytes_per_master_max": max(growth),
    }


def main():
    arguments = sys.argv[1:]
    memory_seconds = 0
    if arguments[:1] == ["--memory-seconds"]:
        memory_seconds = int(arguments[1])
        arguments = arguments[2:]
    if not arguments:
        raise SystemExit(__doc__)
    directory = tempfile.mkdtemp(prefix="locklock-flood-")
    masters = subprocess.run([os.path.join(ROOT, "scripts/start-masters.sh"), "5", directory], capture_output=True, text=True, check=True).stdout.strip()
    try:
        for binary in arguments:
            print(json.dumps(body_costs(binary, masters)), flush=True)
            print(json.dumps(refusals(binary, masters)), flush=True)
        if memory_seconds:
            print(json.dumps(memory(arguments[0], masters, memory_seconds)), flush=True)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts/stop-masters.sh"), directory], check=False)


if __name__ == "__main__":
    main()
