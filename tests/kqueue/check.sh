#!/usr/bin/env bash
# Description: compat/kqueue.c cannot run on Linux, so this checks it two
# ways (`make check-kqueue`). First it compiles the file for every OS macro
# it admits against sys/event.h here, a stub written from the documented
# kqueue API in four header variants (FreeBSD-like, macOS, NetBSD 10, old
# BSD without EV_RECEIPT/EV_DISPATCH). Then it builds libkart with the
# kqueue backend on top of kqemu.c, a test-only kqueue emulation over
# epoll, and runs the selector, loop and compat suites with kqueue among
# the backends; the loop there hears signals through EVFILT_SIGNAL
# (core/loop/signal_kqueue.c) as on those systems. Neither replaces a run on a
# real BSD or macOS kernel.
set -euo pipefail
# Check's own default (4 s) is too short for the ASan build on a busy 2-core machine.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60}
cd "$(dirname "$0")/../.."
stub=tests/kqueue
cc=${KQ_CC:-clang}
W="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter"
for os in __APPLE__ __FreeBSD__ __NetBSD__ __OpenBSD__ __DragonFly__; do
  for v in "" KQSTUB_MACOS KQSTUB_NETBSD KQSTUB_OLD; do
    for f in compat/kqueue.c core/loop/signal_kqueue.c core/loop/fswatch_kqueue.c; do
      $cc $W -D$os -DKART_SIGNAL_KQUEUE ${v:+-D$v} -I$stub -Iinclude -Icore $(for d in core/*/ numa; do printf -- '-I%s ' "${d%/}"; done) -fsyntax-only $f
    done
  done
done
echo "kqueue.c, signal_kqueue.c, fswatch_kqueue.c: compile for 5 OS macros x 4 header variants"

out=build/kqemu
mkdir -p $out/obj
for variant in KQSTUB_MACOS KQSTUB_FREEBSD; do
  CF="$W -O1 -g -DKART_FAULTS=1 -D__FreeBSD__ -DKART_SIGNAL_KQUEUE -D$variant -fsanitize=address,undefined -fno-sanitize-recover=all -I$stub -Iinclude -Icore $(for d in core/*/ numa; do printf -- '-I%s ' "${d%/}"; done)"
  rm -f $out/obj/*.o
  # Signals come from kqueue as on a BSD (signalfd's file out); the host is
  # still Linux, so epoll stays among the backends and futex(2) is used
  # (the parking-lot fallback out).
  # One compiler per CPU (CI's time budget: compiled one at a time, the
  # two builds took most of this check's three to four minutes).
  ls core/*/*.c compat/*.c numa/topology.c $stub/kqemu.c |
    grep -v -e '^core/loop/signal_signalfd.c$' -e '^core/loop/fswatch_kqueue.c$' -e '^compat/futex_parking.c$' |
    xargs -P "$(nproc)" -I{} sh -c '$0 $1 -Wno-missing-prototypes -DKART_BUILDING=1 -fvisibility=hidden -c "$2" -o "$3/obj/$(basename "$2" .c).o"' \
      "$cc" "$CF" {} "$out"
  rm -f $out/libkart.a && ar rcs $out/libkart.a $out/obj/*.o
  for t in check_selector check_loop check_loop_io check_loop_timers check_loop_signals check_loop_children check_loop_async check_loop_fswatch check_compat; do
    $cc $CF -Wno-missing-prototypes -Itests $(pkg-config --cflags check) -o $out/$t tests/$t.c $out/libkart.a $(pkg-config --libs check) -pthread
    echo "$variant $t:"
    $out/$t >$out/$t.log 2>&1 || true
    grep -E '^(backends|skipped):|Checks:' $out/$t.log
    if ! grep -q ', Failures: 0, Errors: 0' $out/$t.log; then
      grep -E ':[EF]:' $out/$t.log
      exit 1
    fi
  done
done
echo "kqueue backend: suites pass over the emulation"
