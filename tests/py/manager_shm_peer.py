"""python3's SyncManager client on a dict and a Queue that kart clients use
through the same-host fast path at the same time (tests/check_manager_shm.c).
argv: ADDRESS AUTHKEY_HEX DICT_IDENT QUEUE_IDENT N.
Sets d["py<i>"] = i and puts ("py", i) for i < N, checks what it reads back,
prints "ALL OK"; any failure raises (non-zero exit)."""
import sys
from multiprocessing.managers import SyncManager, Token, DictProxy, AutoProxy


def address_of(a):
    if a.startswith("@"):
        return "\0" + a[1:]
    return a


def main():
    addr = address_of(sys.argv[1])
    key = bytes.fromhex(sys.argv[2])
    n = int(sys.argv[5])
    m = SyncManager(address=addr, authkey=key)
    m.connect()
    d = DictProxy(Token("dict", addr, sys.argv[3]), "pickle", manager=m, authkey=key)
    q = AutoProxy(Token("Queue", addr, sys.argv[4]), "pickle", manager=m, authkey=key)
    for i in range(n):
        d["py%d" % i] = i
        q.put(("py", i))
        assert d["py%d" % i] == i
    # what the kart side stored before us: keys with Python's equality
    assert d[1] == "one" and d[1.0] == "one" and d[True] == "one"
    assert d[2**70] == "big" and d[float(2**70)] == "big"
    assert d[(1, "t")] == [1, 2.5, None, b"x"]
    assert "kart-0" in d
    assert str(d).startswith("{") and "'kart-0'" in str(d)
    print("ALL OK")


if __name__ == "__main__":
    main()
