"""tests/py/conn_peer.py — the Python side of tests/check_conn_interop.c:
Python's own multiprocessing.connection against a kart peer.

  conn_peer.py listen ADDRESS KEY   Listener: prints its address, accepts one
                                    client, echoes every message until EOF
  conn_peer.py connect ADDRESS KEY  Client: sends the test messages, checks
                                    each echo, closes
  conn_peer.py fd N                 Connection(N): echoes until EOF
  conn_peer.py handles N            Connection(N): recv_handle, writes b"py"
                                    into the fd, send_handle's it back, then
                                    echoes one message
  conn_peer.py hmac DIGEST KEYHEX MSGHEX [DIGEST KEYHEX MSGHEX...]
                                    prints hmac.new(key, msg, digest) in hex,
                                    one line per triple

KEY is the authkey as hex, or '-' for none. ADDRESS "host:port" is TCP,
"@name" the abstract namespace, anything else a unix path. Exits 0 on
success, 3 on an AuthenticationError, 1 on anything else wrong.
"""
import hmac
import os
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from multiprocessing.reduction import recv_handle, send_handle

# Empty, small, and over Python's 16 KiB one-send limit.
MESSAGES = [b"", b"hello", bytes(range(256)) * 80, b"x" * 100000]


def address(s):
    if s.startswith("@"):
        return "\0" + s[1:]
    host, sep, port = s.rpartition(":")
    if sep and port.isdigit() and "/" not in s:
        return (host.strip("[]"), int(port))
    return s


def key(s):
    return None if s == "-" else bytes.fromhex(s)


def echo(conn):
    while True:
        try:
            m = conn.recv_bytes()
        except EOFError:
            return
        conn.send_bytes(m)


def main():
    mode = sys.argv[1]
    try:
        if mode == "listen":
            addr = address(sys.argv[2])
            with Listener(addr, authkey=key(sys.argv[3])) as l:
                a = l.address
                if isinstance(a, tuple):
                    a = ("[%s]:%d" if ":" in a[0] else "%s:%d") % a[:2]
                elif isinstance(a, bytes):  # the abstract namespace
                    a = "@" + a[1:].decode()
                print(a, flush=True)
                with l.accept() as c:
                    echo(c)
        elif mode == "connect":
            with Client(address(sys.argv[2]), authkey=key(sys.argv[3])) as c:
                for m in MESSAGES:
                    c.send_bytes(m)
                    if c.recv_bytes() != m:
                        print("echo differs", file=sys.stderr)
                        return 1
        elif mode == "fd":
            echo(Connection(int(sys.argv[2])))
        elif mode == "handles":
            c = Connection(int(sys.argv[2]))
            if c.recv_bytes() != b"before":
                return 1
            h = recv_handle(c)
            os.write(h, b"py")
            send_handle(c, h, os.getppid())
            os.close(h)
            c.send_bytes(c.recv_bytes())
        elif mode == "hmac":
            args = sys.argv[2:]
            for i in range(0, len(args), 3):
                k, m = bytes.fromhex(args[i + 1]), bytes.fromhex(args[i + 2])
                print(hmac.new(k, m, args[i]).hexdigest())
    except AuthenticationError as e:
        print("AuthenticationError:", e, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
