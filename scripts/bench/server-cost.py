#!/usr/bin/env python3
"""Server CPU per lock cycle on one master, for each way of writing the acquisition.

Starts its own redis-server on a free loopback port, then for each variant sends 60,000
acquisitions of distinct keys, 50 per write, each followed by the compare-and-delete release
script, and reads the server's CPU time (user + system, /proc) before and after. The client
side is excluded: this is what one master spends per cycle. Rounds are interleaved; one JSON
line per variant with the median and range over the rounds.

Each variant starts from an empty keyspace, or, with PREFILL, from one holding PREFILL
fences of other resources in both layouts (entries of the one sorted set, and keys of their
own), as a master does after a day of that many distinct fenced resources.

usage: server-cost.py [ROUNDS] [PREFILL]
"""
import json, os, socket, statistics, subprocess, sys, time

from resp import TRAILER, cmd

VARIANTS = {
    "unfenced: SET NX PX": lambda k, v, t, f: [cmd(b"SET", k, v, b"NX", b"PX", b"10000")],
    "fenced transaction: MULTI, SET NX PX, ZADD GT CH, EXISTS, PTTL, EXEC": lambda k, v, t, f: [
        cmd(b"MULTI"), cmd(b"SET", k, v, b"NX", b"PX", b"10000"), cmd(b"ZADD", f, b"GT", b"CH", t, k),
        cmd(b"EXISTS", b"watch:" + k), cmd(b"PTTL", k), cmd(b"EXEC")],
    "the same with a fence key per resource (ZADD on fence:<lock>, then PEXPIRE for the retention)": lambda k, v, t, f: [
        cmd(b"MULTI"), cmd(b"SET", k, v, b"NX", b"PX", b"10000"), cmd(b"ZADD", b"fence:" + k, b"GT", b"CH", t, b"f"),
        cmd(b"PEXPIRE", b"fence:" + k, b"86400000"), cmd(b"EXISTS", b"watch:" + k), cmd(b"PTTL", k), cmd(b"EXEC")],
    "the same without MULTI/EXEC": lambda k, v, t, f: [
        cmd(b"SET", k, v, b"NX", b"PX", b"10000"), cmd(b"ZADD", f, b"GT", b"CH", t, k), cmd(b"EXISTS", b"watch:" + k),
        cmd(b"PTTL", k)],
    "MULTI, SET NX PX, ZADD GT CH, EXEC": lambda k, v, t, f: [
        cmd(b"MULTI"), cmd(b"SET", k, v, b"NX", b"PX", b"10000"), cmd(b"ZADD", f, b"GT", b"CH", t, k), cmd(b"EXEC")],
    "a Lua script doing SET NX PX and ZADD GT": lambda k, v, t, f: [
        cmd(b"EVALSHA", SHA[b"fenced"], b"2", k, f, v, b"10000", t)],
    "a Lua script doing SET NX PX, EXISTS, INCR of a counter per resource": lambda k, v, t, f: [
        cmd(b"EVALSHA", SHA[b"counter"], b"3", k, b"watch:" + k, b"counter:" + k, v, b"10000", b"86400000", t)],
}
SCRIPTS = {
    b"fenced": b"if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('pttl', KEYS[1]) end "
               b"redis.call('zadd', KEYS[2], 'GT', ARGV[3], KEYS[1]) return 1",
    b"counter": b"if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('pttl', KEYS[1]) end "
                b"if redis.call('exists', KEYS[2]) == 1 then redis.call('publish', KEYS[1], 'a') end "
                b"local t = redis.call('incr', KEYS[3]) if t == 1 then t = redis.call('incrby', KEYS[3], ARGV[4]) "
                b"redis.call('pexpire', KEYS[3], ARGV[3]) end return t",
    b"release": b"local v = redis.call('get', KEYS[1]) if v and string.sub(v, 1, -18) == ARGV[1] then "
                b"return redis.call('del', KEYS[1]) end return 0",
}
SHA = {}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    prefill = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")

        def read_reply():
            line = reader.readline()
            kind, rest = line[:1], line[1:-2]
            if kind == b"$" and int(rest) >= 0:
                reader.read(int(rest) + 2)
            elif kind == b"*":
                for _ in range(max(int(rest), 0)):
                    read_reply()

        for name, source in SCRIPTS.items():
            conn.sendall(cmd(b"SCRIPT", b"LOAD", source))
            reader.readline()  # the bulk string's length
            SHA[name] = reader.readline()[:-2]

        def cpu():
            fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        cycles, batch = 60_000, 50
        results = {name: [] for name in VARIANTS}
        for round_number in range(rounds):
            names = list(VARIANTS) if round_number % 2 == 0 else list(VARIANTS)[::-1]
            for name in names:
                conn.sendall(cmd(b"FLUSHALL"))
                read_reply()
                for start in range(0, prefill, 1000):
                    conn.sendall(b"".join(
                        cmd(b"ZADD", b"cost:fences", b"%d" % i, b"cost:other:%d" % i) + cmd(b"ZADD", b"fence:cost:other:%d" % i, b"%d" % i, b"f")
                        for i in range(start, min(start + 1000, prefill))))
                    for _ in range(2 * (min(start + 1000, prefill) - start)):
                        read_reply()
                before = cpu()
                for start in range(0, cycles, batch):
                    acquire, release, replies = [], [], 0
                    for i in range(start, start + batch):
                        key, value = b"cost:lock:%d:%d" % (round_number, i), b"%032x" % i
                        commands = VARIANTS[name](key, value + TRAILER, b"%d" % (1_800_000_000_000_000 + i), b"cost:fences")
                        acquire += commands
                        replies += len(commands)
                        release.append(cmd(b"EVALSHA", SHA[b"release"], b"1", key, value))
                    conn.sendall(b"".join(acquire))
                    for _ in range(replies):
                        read_reply()
                    conn.sendall(b"".join(release))
                    for _ in range(batch):
                        read_reply()
                results[name].append((cpu() - before) / cycles * 1e6)
        for name, values in results.items():
            print(json.dumps({"bench": "server CPU per cycle (acquire + release), one master", "variant": name,
                              "rounds": rounds, "prefill": prefill, "median_us": round(statistics.median(values), 2),
                              "range_us": [round(min(values), 2), round(max(values), 2)]}))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
