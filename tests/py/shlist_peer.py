"""The Python side of tests/check_shared_list.c: Python's own
multiprocessing.shared_memory.ShareableList against kart's.

  shlist_peer.py read NAME     attach kart's list NAME (no leading '/'),
                               print repr(list(sl)), then set items 0, 1
                               and 2 as the C test expects, and print "ok"
  shlist_peer.py create NAME   make a list for kart to attach, print "ok"

Python 3.8-3.12 register an attached segment with the resource tracker,
which would unlink it when this process ends (3.13 has track=False):
unregister it, so that the segment's owner decides.
"""
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import ShareableList


def untrack(sl):
    resource_tracker.unregister(sl.shm._name, "shared_memory")


def main():
    mode, name = sys.argv[1], sys.argv[2]
    if mode == "read":
        sl = ShareableList(name=name)
        untrack(sl)
        print(repr(list(sl)))
        sl[0] = "py"  # an int's 8-byte slot takes a short str
        sl[1] = 2.5
        sl[2] = None
        try:
            sl[4] = "x" * 100  # past its slot
            print("no ValueError")
        except ValueError:
            pass
        print(sl.count(2.5), sl.index(None))
        sl.shm.close()
        print("ok")
    elif mode == "create":
        sl = ShareableList([7, -1.5, True, None, "h\u00e9llo", b"by\x00tes", "", 2**62],
                           name=name)
        untrack(sl)
        sl.shm.close()
        print("ok")
    else:
        sys.exit(2)


main()
