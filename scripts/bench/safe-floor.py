#!/usr/bin/env python3
"""The fan-out floors of a lock cycle: the least network work a Redlock cycle can do here.

Each cycle sends one command to every master, reads every reply, then a second command to
every master and reads every reply, over blocking sockets with no parsing. A lock library
cannot do the same work faster; compare its latency-mode p50 with these, measured in the
same run. One JSON line per variant:
  plain:    SET key v NX PX 10000, then DEL (the bare floor; DEL is not a safe release)
  unfenced: SET key v NX PX 10000, then EVALSHA release (compare-and-delete, as Locklock does)
  fenced:   EVALSHA acquireFenced (lock key + fresh counter), then EVALSHA release

usage: safe-floor.py HOST:PORT,HOST:PORT,... [CYCLES]
"""
import hashlib, json, os, pathlib, re, socket, sys, textwrap, time

SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "Sources/Redlock/Scripts.swift"


def script(name):
    match = re.search(r"static let %s = RedisScript\(\"\"\"\n(.*?)\"\"\"\)" % name, SCRIPTS.read_text(), re.S)
    return textwrap.dedent(match.group(1)).encode()


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def main():
    masters = [m.split(":") for m in sys.argv[1].split(",")]
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    socks = []
    for host, port in masters:
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    release, acquire = script("release"), script("acquireFenced")
    for s in socks:
        for source in (release, acquire):
            s.sendall(cmd(b"SCRIPT", b"LOAD", source))
            s.recv(128)
    release_sha, acquire_sha = (hashlib.sha1(x).hexdigest().encode() for x in (release, acquire))
    seed = b"%d" % (time.time_ns() // 1000)
    for variant in ("plain", "unfenced", "fenced"):
        lat = []
        for i in range(cycles):
            tag = b"%s:%d:%s" % (variant.encode(), i, os.urandom(8).hex().encode())
            key, counter, value = b"floor:lock:" + tag, b"floor:fence:" + tag, os.urandom(16).hex().encode()
            if variant == "fenced":
                first = cmd(b"EVALSHA", acquire_sha, b"2", key, counter, value, b"10000", b"60000", seed)
            else:
                first = cmd(b"SET", key, value, b"NX", b"PX", b"10000")
            second = cmd(b"DEL", key) if variant == "plain" else cmd(b"EVALSHA", release_sha, b"1", key, value, b"exact")
            start = time.perf_counter()
            for message in (first, second):
                for s in socks:
                    s.sendall(message)
                for s in socks:
                    s.recv(64)
            lat.append(time.perf_counter() - start)
        lat.sort()
        print(json.dumps({"mode": "safe-floor", "variant": variant, "masters": len(socks), "cycles": cycles,
                          "p50_us": round(lat[cycles // 2] * 1e6, 1), "p99_us": round(lat[int(cycles * 0.99)] * 1e6, 1)}))


if __name__ == "__main__":
    main()
