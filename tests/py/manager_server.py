"""A real python3 SyncManager server for kart's client (tests/check_manager.c
runs it). argv: ADDRESS AUTHKEY_HEX [register]. ADDRESS is host:port (port 0:
any) or a unix path. Prints "listening on ADDRESS" (the bound one) and serves
until a client sends shutdown. With "register", the server also has the
typeid "Counter" (a class with incr/get/fail/spawn; spawn returns a new
Counter: a '#PROXY'), to check kart's client against Python's
method_to_typeid."""
import sys
from multiprocessing.managers import SyncManager


class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n

    def get(self):
        return self.n

    def fail(self):
        raise ValueError("asked to fail")

    def spawn(self, start):
        # method_to_typeid: the server calls Counter(<what this returns>)
        return start


class M(SyncManager):
    pass


def address_of(a):
    if ":" in a and not a.startswith("/"):
        host, port = a.rsplit(":", 1)
        return (host, int(port))
    return a


def main():
    if len(sys.argv) > 3 and sys.argv[3] == "register":
        M.register("Counter", Counter, exposed=("incr", "get", "fail", "spawn"),
                   method_to_typeid={"spawn": "Counter"})
    m = M(address=address_of(sys.argv[1]), authkey=bytes.fromhex(sys.argv[2]))
    s = m.get_server()
    a = s.address
    print("listening on %s" % (("%s:%d" % a) if isinstance(a, tuple) else a), flush=True)
    s.serve_forever()


if __name__ == "__main__":
    main()
