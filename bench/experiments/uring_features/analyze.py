#!/usr/bin/env python3
"""Summarise results/exp{1,2,3}.log into markdown tables: median (min-max) per variant."""
import os, re, statistics as st, sys
from collections import OrderedDict, defaultdict

def kv(line):
    return dict(re.findall(r"(\w+)=('[^']*'|\S+)", line))

def fmt(xs, nd=2):
    xs = sorted(xs)
    return f"{st.median(xs):.{nd}f} ({xs[0]:.{nd}f}–{xs[-1]:.{nd}f})"

def loads(path):
    return [l.strip() for l in open(path) if l.startswith("load")]

def exp1():
    g = OrderedDict(); bad = []
    cur = None
    for l in open("results/exp1.log"):
        if not l.startswith("net="): continue
        # line has two parts: sender (mode=..) and receiver (recv bytes=..)
        s, r = l.split(" recv ")
        a, b = kv(s), kv(r)
        if int(b["bad"]) or a["bytes"] != b["bytes"]: bad.append(l)
        k = (a["net"], int(a["bsz"]), a["mode"])
        gb = int(a["bytes"]) / 1e9
        g.setdefault(k, []).append((float(a["GBps"]), float(a["cpu_s_per_GB"]),
                                     float(b["recv_cpu"]) / gb, int(a["copied"]), int(a["notifs"])))
    print("| net | buf | mode | n | GB/s | sender CPU s/GB | receiver CPU s/GB | sender+receiver s/GB | ZC notifs copied/total |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (net, bsz, mode), v in g.items():
        print(f"| {net} | {bsz//1024} KiB | {mode} | {len(v)} | {fmt([x[0] for x in v])} | "
              f"{fmt([x[1] for x in v],3)} | {fmt([x[2] for x in v],3)} | {fmt([x[1]+x[2] for x in v],3)} | "
              f"{sum(x[3] for x in v)}/{sum(x[4] for x in v)} |")
    print("\nverification failures:", len(bad))
    for l in loads("results/exp1.log"): print("   ", l)

def exp23(path, keyf, names):
    g = OrderedDict(); fails = []
    for l in open(path):
        if not l.startswith("tag="): continue
        d = kv(l)
        if d.get("crc") != "0" or d.get("src") != "0" or d.get("bad") != "0": fails.append(l); continue
        reqs = int(d["reqs"])
        k = (d["tag"], keyf(d))
        g.setdefault(k, []).append((float(d["rps"]), float(d["cpu"]) / reqs * 1e6,
                                     int(d["recv_cqes"]) / reqs, int(d["sends"]) / reqs,
                                     float(d["cpu"]) / float(d["wall"])))
    print("| load (conns_size_depth) | variant | n | req/s (k) | server CPU µs/req | recv CQEs/req | sends/req | server CPU util |")
    print("|---|---|---|---|---|---|---|---|")
    for (tag, var), v in g.items():
        print(f"| {tag[2:]} | {names(var)} | {len(v)} | {fmt([x[0]/1e3 for x in v],1)} | "
              f"{fmt([x[1] for x in v],3)} | {fmt([x[2] for x in v],3)} | {fmt([x[3] for x in v],3)} | "
              f"{fmt([x[4] for x in v],2)} |")
    print("\nfailed runs (client/server rc or data mismatch):", len(fails))
    for l in fails: print("   ", l.strip())
    for l in loads(path): print("   ", l)

if "1" in sys.argv[1:]: exp1()
if "2" in sys.argv[1:]:
    exp23(os.environ.get("EXP2LOG", "results/exp2.log"), lambda d: (d["thread"], d["direct"]),
          lambda v: ("idle thread, " if v[0] == "1" else "single-thread, ") + ("direct" if v[1] == "1" else "normal fd"))
if "3" in sys.argv[1:]:
    exp23(os.environ.get("EXP3LOG", "results/exp3.log"), lambda d: d["bundle"],
          lambda v: {"0": "no bundle", "1": "bundle + 1 sendmsg/CQE", "2": "bundle + 1 send/buffer", "3": "no bundle, coalescing sendmsg"}[v])

def paired(path, base, test, label):
    """Per-round ratios test/base (runs alternate, so the k-th run of each variant is a pair)."""
    runs = defaultdict(list)
    for l in open(path):
        if not l.startswith("tag="): continue
        d = kv(l)
        runs[(d["tag"], d["variant"].strip("'"))].append(
            (float(d["rps"]), float(d["cpu"]) / int(d["reqs"]) * 1e6))
    for tag in sorted({t for t, _ in runs}):
        a, b = runs.get((tag, base), []), runs.get((tag, test), [])
        if not a or not b: continue
        rr = [y[0] / x[0] for x, y in zip(a, b)]
        cr = [y[1] / x[1] for x, y in zip(a, b)]
        print(f"| {tag[2:]} | {label} | {len(rr)} | {fmt(rr,3)} | {sum(r > 1 for r in rr)}/{len(rr)} | "
              f"{fmt(cr,3)} | {sum(c < 1 for c in cr)}/{len(cr)} |")

if "p2" in sys.argv[1:] or "p3" in sys.argv[1:]:
    print("| load | comparison | pairs | req/s ratio | test faster | CPU/req ratio | test cheaper |")
    print("|---|---|---|---|---|---|---|")
if "p2" in sys.argv[1:]:
    paired(os.environ.get("EXP2LOG", "results/exp2.log"), "", "-d", "direct / normal fd (single-thread)")
    paired(os.environ.get("EXP2LOG", "results/exp2.log"), "-t", "-d -t", "direct / normal fd (idle thread)")
    paired(os.environ.get("EXP2LOG", "results/exp2.log"), "", "-t", "idle thread / single-thread (normal fd)")
    paired(os.environ.get("EXP2LOG", "results/exp2.log"), "-d", "-d -t", "idle thread / single-thread (direct)")
if "p3" in sys.argv[1:]:
    paired(os.environ.get("EXP3LOG", "results/exp3.log"), "", "-b 1", "bundle+sendmsg / no bundle")
    paired(os.environ.get("EXP3LOG", "results/exp3.log"), "", "-b 2", "bundle+send per buf / no bundle")
    paired(os.environ.get("EXP3LOG", "results/exp3.log"), "", "-b 3", "no bundle, coalescing sendmsg / no bundle")
    paired(os.environ.get("EXP3LOG", "results/exp3.log"), "-b 3", "-b 1", "bundle+sendmsg / no bundle, coalescing sendmsg")
