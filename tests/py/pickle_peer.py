"""Python's side of tests/check_pickle.c.

  pickle_peer.py probe          prints the Python version and default protocol
  pickle_peer.py gen            writes, for every value of VALUES and protocol
                                2..5, a record: u8 protocol, u8 flags (1: skip
                                the repr check), u32 index, u32 length + the
                                pickle, u32 length + repr(value) in UTF-8
  pickle_peer.py check FILE     reads records (u8 protocol, u32 index, u32
                                length + pickle) that kart wrote, loads each
                                with pickle.loads and compares it with
                                VALUES[index]; prints "OK n" or one line per
                                difference
"""
import math
import pickle
import queue
import struct
import sys
from multiprocessing.managers import RemoteError, Token


def values():
    x = [1, 2]
    nested = 0
    for _ in range(60):
        nested = [nested, {"k": (nested,)}] if isinstance(nested, int) else [nested]
    ke = KeyError("x")
    ke.extra = 5
    return [
        None, True, False, 0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31,
        2**63 - 1, -2**63, 2**63, -2**63 - 1, 2**64, 2**70, -2**70, 10**100, -(10**300),
        2**2100, 1.5, -0.0, 0.0, float("inf"), float("-inf"), float("nan"), 1e300,
        5e-324, 0.1, 1e16, 1e-5, "", "abc", "h\u00e9llo \u2603 \U0001d11e", "it's",
        "a\"b'c", "x" * 300, "\x00\n", "\u00ff" * 3, b"", b"\x00\xff", b"y" * 300,
        bytes(range(256)), (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [1, [2, [3]]],
        {}, {1: 2, "a": [b"x", None, True]}, {(1, 2): "t", 2.5: 1, None: 0, b"k": -1},
        [x, x, (x,)], list(range(2000)), {str(i): i for i in range(1500)}, nested,
        ("#RETURN", {"k": [1, 2.0, "3"]}), ("#ERROR", KeyError("x")),
        ("#PROXY", ("dict", Token("dict", ("127.0.0.1", 5000), "7f00aa"))),
        Token("Queue", "/tmp/sock", "ab"), KeyError("x"), ValueError("bad", 3),
        RemoteError("tb"), IndexError(), OSError(2, "nf"), queue.Empty(), queue.Full(), ke,
    ]


def norm(v):
    """A comparable form that tells 1 from True from 1.0, -0.0 from 0.0."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, float):
        if math.isnan(v):
            return ("nan",)
        return ("float", v, math.copysign(1, v))
    if isinstance(v, Token):
        return ("Token", norm(v.__getstate__()))
    if isinstance(v, BaseException):
        return ("exc", type(v).__module__, type(v).__name__, norm(v.args), norm(v.__dict__))
    if isinstance(v, tuple):
        return ("tuple",) + tuple(norm(i) for i in v)
    if isinstance(v, list):
        return ("list", [norm(i) for i in v])
    if isinstance(v, dict):
        return ("dict", [(norm(k), norm(i)) for k, i in v.items()])
    return (type(v).__name__, v)


def main():
    mode = sys.argv[1]
    if mode == "probe":
        print("python %s, default protocol %d" % (sys.version.split()[0], pickle.DEFAULT_PROTOCOL))
        return
    vals = values()
    if mode == "gen":
        out = sys.stdout.buffer
        for i, v in enumerate(vals):
            skip = isinstance(v, (Token, BaseException)) or "Token" in repr(v) or "Error" in repr(v)
            r = repr(v).encode()
            for p in (2, 3, 4, 5):
                data = pickle.dumps(v, protocol=p)
                out.write(struct.pack("<BBI", p, 1 if skip else 0, i))
                out.write(struct.pack("<I", len(data)) + data)
                out.write(struct.pack("<I", len(r)) + r)
        return
    if mode == "check":
        data = open(sys.argv[2], "rb").read()
        pos = n = bad = 0
        while pos < len(data):
            p, i, ln = struct.unpack_from("<BII", data, pos)
            pos += 9
            blob = data[pos:pos + ln]
            pos += ln
            try:
                got = pickle.loads(blob)
            except Exception as e:  # noqa: BLE001
                print("BAD load p%d #%d: %r" % (p, i, e))
                bad += 1
                continue
            if norm(got) != norm(vals[i]):
                print("BAD p%d #%d: %r != %r" % (p, i, repr(got)[:200], repr(vals[i])[:200]))
                bad += 1
            if blob[:2] != bytes([0x80, p]):
                print("BAD p%d #%d: header %r" % (p, i, blob[:2]))
                bad += 1
            n += 1
        if not bad:
            print("OK %d" % n)
        return
    raise SystemExit("unknown mode " + mode)


main()
