#!/usr/bin/env python3
"""The fan-out floors of a lock cycle: the least network work a Redlock cycle can do here.

Each cycle sends one command to every master, reads every reply, then a second command to
every master and reads every reply, over blocking sockets with no parsing. A lock library
cannot do the same work faster; compare its latency-mode p50 with these, measured in the
same run. One JSON line per variant:
  plain:    SET key v NX PX 10000, then DEL (the bare floor; DEL is not a safe release)
  unfenced: SET key v NX PX 10000, then EVALSHA release (compare-and-delete, as Locklock does)
  fenced:   MULTI, SET key v NX PX 10000, ZADD fences GT CH token key, EXISTS, PTTL, EXEC (the
            commands of Locklock's fenced acquisition), then EVALSHA release

usage: safe-floor.py HOST:PORT,HOST:PORT,... [CYCLES]
"""
import hashlib, json, os, socket, sys, time

from resp import TRAILER, cmd

# Compare-and-delete of a value without its 17-byte token trailer, as Locklock's release.
RELEASE = b"""local v = redis.call('get', KEYS[1])
if v and string.sub(v, 1, -18) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0"""


def main():
    masters = [m.split(":") for m in sys.argv[1].split(",")]
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    socks = []
    for host, port in masters:
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    for s in socks:
        s.sendall(cmd(b"SCRIPT", b"LOAD", RELEASE))
        assert s.recv(128).startswith(b"$40"), "the release script did not load"
    release_sha = hashlib.sha1(RELEASE).hexdigest().encode()
    for variant in ("plain", "unfenced", "fenced"):
        lat = []
        for i in range(cycles):
            tag = b"%s:%d:%s" % (variant.encode(), i, os.urandom(8).hex().encode())
            key, value = b"floor:lock:" + tag, os.urandom(16).hex().encode()
            # Lines of the first reply: one, or the transaction's ten (OK, four QUEUED, *4, four).
            lines = 1
            if variant == "fenced":
                token = b"%d" % (time.time_ns() // 1000)
                first = (cmd(b"MULTI") + cmd(b"SET", key, value + TRAILER, b"NX", b"PX", b"10000")
                         + cmd(b"ZADD", b"floor:fences", b"GT", b"CH", token, key) + cmd(b"EXISTS", b"floor:watch:" + tag)
                         + cmd(b"PTTL", key) + cmd(b"EXEC"))
                lines = 10
            else:
                first = cmd(b"SET", key, value + TRAILER, b"NX", b"PX", b"10000")
            second = cmd(b"DEL", key) if variant == "plain" else cmd(b"EVALSHA", release_sha, b"1", key, value)
            start = time.perf_counter()
            for message, expected in ((first, lines), (second, 1)):
                for s in socks:
                    s.sendall(message)
                for s in socks:
                    reply = s.recv(256)
                    while reply.count(b"\r\n") < expected:
                        reply += s.recv(256)
            lat.append(time.perf_counter() - start)
        lat.sort()
        print(json.dumps({"mode": "safe-floor", "variant": variant, "masters": len(socks), "cycles": cycles,
                          "p50_us": round(lat[cycles // 2] * 1e6, 1), "p99_us": round(lat[int(cycles * 0.99)] * 1e6, 1)}))


if __name__ == "__main__":
    main()
