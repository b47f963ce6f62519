"""What the benchmark scripts share to talk to Redis without a client library."""

# The 17-byte trailer of an unfenced lock value (0x1F and a zero token in 16 hex digits).
TRAILER = b"\x1f" + b"0" * 16


def cmd(*args):
    """One command in RESP: an array of bulk strings."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
