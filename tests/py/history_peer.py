"""tests/py/history_peer.py — the GNU readline side of tests/check_history.c:
Python's readline module (GNU readline's history library underneath) reads
and writes the history files kart reads and writes.

  history_peer.py probe                      exits 0 when readline is GNU
                                             readline, prints its version
  history_peer.py read FILE OUT              read_history_file(FILE); OUT gets
                                             each entry, in hex, one a line
  history_peer.py write FILE IN              the entries of IN (hex, one a line)
                                             added, then write_history_file(FILE)
  history_peer.py append FILE IN N           the entries of IN added, then
                                             append_history_file(N, FILE)
  history_peer.py write-ts FILE IN           as write, with GNU's own timestamps
                                             (history_write_timestamps and
                                             history_comment_char '#' set through
                                             ctypes; IN lines are "SECONDS HEX")
  history_peer.py truncate FILE N            GNU's history_truncate_file(FILE, N)
                                             (through ctypes)
  history_peer.py truncate-ts FILE N         the same with history_comment_char
                                             '#', as bash sets it

Entries cross as bytes: the module decodes them with the locale's encoding
and surrogateescape (the caller sets LC_ALL=C.UTF-8), and they are encoded
back the same way. Exits 0 on success, 1 on anything wrong.
"""
import ctypes
import sys

try:
    import readline
except ImportError as e:
    readline = None
    missing = str(e)


def entries_in(path):
    with open(path) as f:
        return [bytes.fromhex(l).decode("utf-8", "surrogateescape")
                for l in f.read().splitlines()]


def load(entries):
    readline.clear_history()
    for e in entries:
        readline.add_history(e)


def libreadline():
    return ctypes.CDLL("libreadline.so.8")


def main(argv):
    cmd = argv[1]
    if cmd == "probe":
        if readline is None:
            print("no readline module:", missing)
            return 1
        if "libedit" in (readline.__doc__ or "") or getattr(readline, "backend", "readline") != "readline":
            print("python's readline module is libedit, not GNU readline")
            return 1
        print("GNU readline", readline._READLINE_LIBRARY_VERSION)
        return 0
    path = argv[2]
    if cmd == "read":
        readline.clear_history()
        readline.read_history_file(path)
        with open(argv[3], "w") as out:
            for i in range(1, readline.get_current_history_length() + 1):
                out.write(readline.get_history_item(i).encode("utf-8", "surrogateescape").hex() + "\n")
    elif cmd == "write":
        load(entries_in(argv[3]))
        readline.write_history_file(path)
    elif cmd == "append":
        load(entries_in(argv[3]))
        readline.append_history_file(int(argv[4]), path)
    elif cmd == "write-ts":
        rl = libreadline()
        ctypes.c_int.in_dll(rl, "history_write_timestamps").value = 1
        ctypes.c_char.in_dll(rl, "history_comment_char").value = b"#"
        rl.add_history_time.argtypes = [ctypes.c_char_p]
        readline.clear_history()
        with open(argv[3]) as f:
            for l in f:
                secs, hexs = l.split()
                readline.add_history(bytes.fromhex(hexs).decode("utf-8", "surrogateescape"))
                rl.add_history_time(b"#" + secs.encode())
        readline.write_history_file(path)
    elif cmd in ("truncate", "truncate-ts"):
        rl = libreadline()
        if cmd == "truncate-ts":
            ctypes.c_char.in_dll(rl, "history_comment_char").value = b"#"
        rl.history_truncate_file.argtypes = [ctypes.c_char_p, ctypes.c_int]
        if rl.history_truncate_file(path.encode(), int(argv[3])) != 0:
            return 1
    else:
        print("unknown command", cmd)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
