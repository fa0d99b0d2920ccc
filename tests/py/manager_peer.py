"""The real python3's SyncManager client against a kart manager server
(tests/check_manager.c runs it). argv: ADDRESS AUTHKEY_HEX.
ADDRESS is host:port (TCP) or a unix path. Prints one line per check and
"ALL OK" at the end; any failure raises (non-zero exit)."""
import sys
import threading
import time
import queue as pyqueue
from multiprocessing.managers import SyncManager


def address_of(a):
    if a.startswith("@"):
        return "\0" + a[1:]
    if ":" in a and not a.startswith("/"):
        host, port = a.rsplit(":", 1)
        return (host, int(port))
    return a


def main():
    m = SyncManager(address=address_of(sys.argv[1]), authkey=bytes.fromhex(sys.argv[2]))
    m.connect()

    d = m.dict()
    d["a"] = 1
    d[2] = [1, 2.5, "x", b"y", None, True, (1, 2)]
    d[(1, "t")] = {"k": -(2**70)}
    assert d["a"] == 1
    assert d[2] == [1, 2.5, "x", b"y", None, True, (1, 2)]
    assert d[(1, "t")] == {"k": -(2**70)}
    assert len(d) == 3 and "a" in d and "zz" not in d
    assert d.get("zz", 7) == 7 and d.get("a") == 1
    assert sorted(map(str, d.keys())) == ["(1, 't')", "2", "a"]
    assert d.setdefault("s", "v") == "v" and d.pop("s") == "v"
    d.update({"u": 1}, w=2)
    assert d["u"] == 1 and d["w"] == 2
    assert list(iter(d))[:1] == ["a"]  # __iter__: an Iterator proxy
    try:
        d["missing"]
        raise AssertionError("no KeyError")
    except KeyError as e:
        assert e.args == ("missing",), e.args
    assert d.copy()["a"] == 1
    del d["a"]
    assert "a" not in d
    assert d.popitem() == ("w", 2)
    d.clear()
    assert len(d) == 0 and str(d) == "{}"
    print("dict ok")

    l = m.list([3, 1, 2])
    l.append("z")
    assert l[3] == "z" and l[-1] == "z" and len(l) == 4
    l.remove("z")
    l.sort()
    assert l[0] == 1 and l._getvalue() == [1, 2, 3]
    l.extend([4, 5])
    l.insert(0, 0)
    assert l.index(4) == 4 and l.count(4) == 1 and l.pop() == 5
    l.reverse()
    assert l._getvalue() == [4, 3, 2, 1, 0]
    l[0] = "four"
    assert l[0] == "four"
    l += [9]
    assert l[-1] == 9 and (l + [1])[-1] == 1 and len(l * 2) == 12
    try:
        l[100]
        raise AssertionError("no IndexError")
    except IndexError:
        pass
    print("list ok")

    ns = m.Namespace()
    ns.x = 10
    ns.name = "kart"
    assert ns.x == 10 and ns.name == "kart"
    del ns.x
    try:
        ns.x
        raise AssertionError("no AttributeError")
    except AttributeError:
        pass
    print("namespace ok")

    v = m.Value("i", 5)
    assert v.value == 5
    v.value = 2**80
    assert v.get() == 2**80
    print("value ok")

    q = m.Queue()
    q.put({"job": 1})
    q.put("two")
    assert q.qsize() == 2 and not q.empty()
    assert q.get() == {"job": 1} and q.get(timeout=1) == "two"
    try:
        q.get(timeout=0.05)
        raise AssertionError("no Empty")
    except pyqueue.Empty:
        pass
    try:
        q.get_nowait()
        raise AssertionError("no Empty")
    except pyqueue.Empty:
        pass
    b = m.Queue(1)
    b.put(1)
    try:
        b.put(2, timeout=0.05)
        raise AssertionError("no Full")
    except pyqueue.Full:
        pass
    # a blocking get in one thread does not block this one
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    time.sleep(0.1)
    assert d.get("nothing") is None
    q.put("late")
    t.join(5)
    assert got == ["late"], got
    print("queue ok")

    e = m.Event()
    assert not e.is_set() and e.wait(0.05) is False
    threading.Timer(0.1, e.set).start()
    assert e.wait(5) is True and e.is_set()
    e.clear()
    assert not e.is_set()
    print("event ok")

    lk = m.Lock()
    with lk:
        assert lk.acquire(False) is False
    assert lk.acquire(timeout=1) is True
    lk.release()
    rl = m.RLock()
    with rl:
        with rl:
            pass
    print("lock ok")

    s = m.Semaphore(2)
    assert s.acquire() and s.acquire(False) and not s.acquire(False)
    s.release()
    bs = m.BoundedSemaphore(1)
    try:
        bs.release()
        raise AssertionError("no ValueError")
    except ValueError:
        pass
    c = m.Condition()
    woke = []

    def waiter():
        with c:
            woke.append(c.wait(5))

    ts = [threading.Thread(target=waiter) for _ in range(2)]
    [t.start() for t in ts]
    time.sleep(0.2)
    with c:
        c.notify_all()
    [t.join(5) for t in ts]
    assert woke == [True, True], woke
    bar = m.Barrier(2)
    idx = []
    t = threading.Thread(target=lambda: idx.append(bar.wait()))
    t.start()
    idx.append(bar.wait())
    t.join(5)
    assert sorted(idx) == [0, 1] and bar.parties == 2 and not bar.broken
    arr = m.Array("i", [1, 2, 3])
    arr[0] = 10
    assert len(arr) == 3 and arr[0] == 10 and arr[-1] == 3
    jq = m.JoinableQueue()
    jq.put(1)
    jq.get()
    jq.task_done()
    jq.join()
    print("sync ok")

    # a value kart cannot take is an error for this call only
    try:
        d["obj"] = object()
    except Exception as e:
        print("refused instance:", type(e).__name__)
    d["after"] = 1
    assert d["after"] == 1
    print("ALL OK")


main()
