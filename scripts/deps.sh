#!/usr/bin/env bash
# scripts/deps.sh — makes sure the packages kart builds, tests and
# benchmarks with are installed.
#
# On Debian and Ubuntu it installs what is missing with apt-get (as root, or
# through sudo) and says what it installed. Elsewhere it prints what to
# install and exits non-zero if something required is missing.
#
#   scripts/deps.sh           check, install what is missing
#   scripts/deps.sh --qemu    also the packages of `make check-numa`
#   scripts/deps.sh --plot    also the packages of `make bench-plot`
#   scripts/deps.sh --list    print the Debian package names and exit
#                             (--list --qemu, --list --plot: with those)
set -u

# Debian package, and how to tell that it is present.
required=(
  "pkg-config:command -v pkg-config"
  "check:pkg-config --exists check"
  "liburing-dev:pkg-config --exists liburing"
  "libnuma-dev:pkg-config --exists numa"
  "libssl-dev:pkg-config --exists libcrypto"
  "python3:command -v python3"
  "tmux:command -v tmux"
)
# The benchmark peers and test helpers: wanted, not required to build.
optional=(
  "libuv1-dev:pkg-config --exists libuv"
  "libevent-dev:pkg-config --exists libevent"
  "libev-dev:test -f /usr/include/ev.h"
  "libtbb-dev:pkg-config --exists tbb"
  "wrk:command -v wrk"
  "nginx-light:command -v nginx || test -x /usr/sbin/nginx"
  "libreadline-dev:test -f /usr/include/readline/readline.h"
  "libedit-dev:pkg-config --exists libedit"
  "openmpi-bin:command -v mpirun" "libopenmpi-dev:command -v mpicc" # the MPI pool (make MPI=1, check-mpi)
)
# `make check-numa` only (scripts/deps.sh --qemu): QEMU, and a kernel to
# boot as a two-node NUMA guest (Debian's, in /boot; not booted on the host).
qemu=(
  "qemu-system-x86:command -v qemu-system-x86_64"
  "linux-image-amd64:ls /boot/vmlinuz-*"
)
# `make bench-plot` only (scripts/deps.sh --plot): gnuplot draws the
# benchmark charts (scripts/bench-plot); check and bench do without it.
plot=(
  "gnuplot-nox:command -v gnuplot"
)
want_qemu=0 want_plot=0
for a in "$@"; do
  [ "$a" = "--qemu" ] && want_qemu=1
  [ "$a" = "--plot" ] && want_plot=1
done
[ $want_qemu -eq 1 ] && optional+=("${qemu[@]}")
[ $want_plot -eq 1 ] && optional+=("${plot[@]}")

if [ "${1:-}" = "--list" ]; then
  for e in "${required[@]}" "${optional[@]}"; do echo "${e%%:*}"; done
  exit 0
fi

missing=()
for e in "${required[@]}" "${optional[@]}"; do
  pkg=${e%%:*}
  test=${e#*:}
  if ! (eval "$test") >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "kart: missing packages: ${missing[*]}" >&2
  echo "kart: this host has no apt-get; install the equivalents yourself:" >&2
  echo "  liburing (>= 2.0), libnuma, check (libcheck), OpenSSL's libcrypto, pkg-config, python3;" >&2
  echo "  for the benchmarks also libuv, libevent, libev, oneTBB, wrk, nginx, GNU readline and libedit." >&2
  echo "  Fedora: dnf install liburing-devel numactl-devel check-devel openssl-devel python3 pkgconf libuv-devel libevent-devel libev-devel tbb-devel wrk nginx readline-devel libedit-devel" >&2
  echo "  macOS:  brew install check pkg-config openssl python libuv libevent libev tbb wrk nginx readline libedit (io_uring and libnuma are Linux-only)" >&2
  for e in "${required[@]}"; do
    case " ${missing[*]} " in *" ${e%%:*} "*) exit 1 ;; esac
  done
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "kart: missing packages: ${missing[*]}; run as root or install sudo:" >&2
  echo "  apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "kart: installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
  # A fresh machine often has no package lists yet.
  "${sudo[@]}" apt-get update -q >/dev/null 2>&1
  if ! "${sudo[@]}" apt-get install -y -q "${missing[@]}"; then
    echo "kart: apt-get could not install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "kart: installed ${missing[*]}"
