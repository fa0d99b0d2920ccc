#!/usr/bin/env bash
# Description: `make install PREFIX=...` gives a copy that a program can
# build against with pkg-config alone, and the shared library exports only
# the public kart_* API. Run by `make check` (through run-tests.sh).
set -eu
cd "$(dirname "$0")/.."
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
make --no-print-directory -s install PREFIX="$prefix" ${SAN:+SAN=$SAN} >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags kart)
libs=$(pkg-config --libs kart)
san=${SAN:+-fsanitize=$SAN}
${CC:-cc} -std=c11 -Wall -Werror $san tests/install/hello.c $cflags $libs -o "$prefix/hello"
out=$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/hello")
echo "$out"
case "$out" in "kart "*" callbacks") ;; *) echo "unexpected output"; exit 1 ;; esac
# It really ran against the installed shared library.
LD_LIBRARY_PATH="$prefix/lib" ldd "$prefix/hello" | grep -q "$prefix/lib/libkart.so.1"
# Internal symbols stay hidden; the public ones are there, versioned by
# libkart.map (tests/exports_test.sh checks the whole list). The version
# node itself is an absolute symbol (type A), the one name not kart_.
so="$prefix/lib/libkart.so.1"
if nm -D --defined-only "$so" | awk '$2 != "A" {print $3}' | grep -v '^kart_[a-z]' | grep -q .; then
  echo "unexpected exported symbols:"; nm -D --defined-only "$so" | grep -v ' kart_[a-z]'; exit 1
fi
nm -D --defined-only "$so" | grep -q ' kart_loop_run@@KART_0\.2$'
readelf -d "$so" | grep -q 'SONAME.*libkart.so.1'
echo "install test passed"
