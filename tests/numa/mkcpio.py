#!/usr/bin/env python3
"""tests/numa/mkcpio.py DIR > initramfs.cpio — packs DIR as a cpio "newc"
archive, the initramfs format the kernel unpacks (no cpio(1) needed). Every
entry is owned by root; directories come before what they hold."""
import os
import stat
import sys


def entry(out, ino, name, mode, data=b"", nlink=1):
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
    out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
    out.write(name_b)
    out.write(b"\0" * (-(110 + len(name_b)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def main():
    root = sys.argv[1]
    out = sys.stdout.buffer
    ino = 1
    for top, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(top, root)
        if rel != ".":
            entry(out, ino, rel, stat.S_IFDIR | 0o755, nlink=2)
            ino += 1
        for f in sorted(files):
            path = os.path.join(top, f)
            with open(path, "rb") as fh:
                data = fh.read()
            perm = os.stat(path).st_mode & 0o777
            name = f if rel == "." else os.path.join(rel, f)
            entry(out, ino, name, stat.S_IFREG | perm, data)
            ino += 1
    entry(out, 0, "TRAILER!!!", 0)


if __name__ == "__main__":
    main()
