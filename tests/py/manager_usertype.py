"""The real python3's BaseManager client using a type registered in a kart
server from C (tests/check_manager.c's "Counter": incr, get, fail, echo,
spawn -> a new Counter, todict -> a dict). argv: ADDRESS AUTHKEY_HEX.
As Python's docs do for a client, the typeids are registered with no
callable. Prints "ALL OK" at the end; any failure raises."""
import sys
from multiprocessing.managers import BaseManager, DictProxy


class M(BaseManager):
    pass


M.register("Counter", exposed=("incr", "get", "fail", "echo", "spawn", "todict"),
           method_to_typeid={"spawn": "Counter", "todict": "dict"})
M.register("dict", proxytype=DictProxy)


def address_of(a):
    if a.startswith("@"):
        return "\0" + a[1:]
    if ":" in a and not a.startswith("/"):
        host, port = a.rsplit(":", 1)
        return (host, int(port))
    return a


def main():
    m = M(address=address_of(sys.argv[1]), authkey=bytes.fromhex(sys.argv[2]))
    m.connect()
    c = m.Counter(5)
    assert c.incr(2) == 7 and c.incr() == 8 and c.get() == 8
    assert c.echo(b"\x00bytes", [1, "two"]) == (b"\x00bytes", [1, "two"])
    try:
        c.fail()
        raise AssertionError("fail() did not raise")
    except ValueError as e:
        assert "asked to fail" in str(e)
    c2 = c.spawn(40)
    assert type(c2).__name__.startswith("AutoProxy") and c2.incr(2) == 42
    assert c.get() == 8
    d = c.todict()
    assert d["n"] == 8 and len(d) == 1
    print("usertype OK")
    del c, c2, d
    print("ALL OK")


if __name__ == "__main__":
    main()
