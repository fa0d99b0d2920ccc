#!/usr/bin/env bash
# Description: the shared library exports exactly the public API. Three
# lists must agree: the functions (and data) declared with KART_API in
# include/, the version nodes of libkart.map, and what $OUT/libkart.so.1
# exports (nm -D), each symbol at the version the map gives it. Also: no
# public header declares a kart_ function without KART_API (a program would
# compile against it and fail to link). Run by `make check` (through
# run-tests.sh) with OUT (already built), CC and SAN from the Makefile;
# without OUT it builds the library first, SAN=... and the other knobs
# taken from the environment as make takes them.
set -eu
cd "$(dirname "$0")/.."
export LC_ALL=C
: "${CC:=cc}"
export CC
if [ -z "${OUT:-}" ]; then
  knobs=()
  for k in SAN URING NUMA FUTEX; do
    if [ -n "${!k:-}" ]; then knobs+=("$k=${!k}"); fi
  done
  OUT=$(make --no-print-directory -pq lib ${knobs[@]+"${knobs[@]}"} 2>/dev/null | sed -n 's/^OUT := //p' | head -n 1)
  [ -n "$OUT" ] || { echo "exports_test: cannot find OUT from the Makefile"; exit 1; }
  make --no-print-directory -s lib ${knobs[@]+"${knobs[@]}"} >/dev/null ||
    { echo "exports_test: building $OUT/libkart.so.1 failed"; exit 1; }
fi
so=$OUT/libkart.so.1
[ -f "$so" ] || { echo "exports_test: no $so (make lib)"; exit 1; }
map=libkart.map
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. What the headers declare. Preprocessed as the library sees them
# (KART_BUILDING), KART_API becomes __attribute__((visibility("default"))),
# which marks the declarations: a declaration may span lines, carry other
# attributes, or be data. The awk reads the output as one stream of
# file-scope statements (split at ';', '{' and '}', bodies skipped) and
# keeps those that come from include/.
{
  # kart/pool_mpi.h is libkart-mpi's (mpi/libkart-mpi.map; scripts/mpi-check.sh checks it).
  for h in include/kart.h include/kart/*.h; do
    [ "$h" = include/kart/pool_mpi.h ] || printf '#include "%s"\n' "${h#include/}"
  done
} | "$CC" -E -std=c11 -D_GNU_SOURCE -DKART_BUILDING=1 -Iinclude -x c - > "$tmp/pp.i"
awk -v bad="$tmp/unparsed" -v bare="$tmp/bare" '
function flush(   s, api, name, i, c, d, head, out) {
  s = stmt; stmt = ""
  if (sfile !~ /^include\//) return
  gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
  if (s == "") return
  api = index(s, "__attribute__((visibility(\"default\")))") > 0
  # Drop every __attribute__((...)), nested parentheses and all.
  out = ""
  while ((i = index(s, "__attribute__")) > 0) {
    out = out substr(s, 1, i - 1); s = substr(s, i + 13); d = 0
    for (c = 1; c <= length(s); c++) {
      if (substr(s, c, 1) == "(") d++
      else if (substr(s, c, 1) == ")") { if (--d == 0) break }
    }
    s = substr(s, c + 1)
  }
  s = out s
  # Not declarations of a function or variable: typedefs, static inlines,
  # type definitions and forward declarations of tags.
  if (!api && (s ~ /^(typedef|static|_Static_assert)[ (]/ || index(s, "{}") > 0 || s ~ /^(struct|union|enum) [A-Za-z_0-9]+$/)) return
  if (index(s, "(") > 0) {
    head = substr(s, 1, index(s, "(") - 1)
    sub(/ +$/, "", head)
  } else {
    head = s; sub(/[=[].*/, "", head); sub(/ +$/, "", head)
  }
  name = head; sub(/.*[^A-Za-z0-9_]/, "", name)
  if (!api) {
    # An ordinary declaration of a kart_ function or variable: it should
    # carry KART_API (a typedef or a static inline does not reach here).
    if (name ~ /^kart_[a-z0-9_]+$/) print sfile ": " s > bare
    return
  }
  if (name !~ /^kart_[a-z0-9_]+$/) { print sfile ": " s > bad; return }
  print name
}
/^# [0-9]+ "/ { f = $3; gsub(/"/, "", f); cur = f; next }
/^#/ { next }
{
  line = $0
  while (line != "") {
    p = match(line, /[;{}]/)
    if (!p) { if (depth == 0) { if (stmt == "") sfile = cur; stmt = stmt " " line }; break }
    ch = substr(line, p, 1); pre = substr(line, 1, p - 1); line = substr(line, p + 1)
    if (depth == 0) { if (stmt == "") sfile = cur; stmt = stmt " " pre }
    if (ch == "{") { if (depth == 0) { body = stmt; bfile = sfile; stmt = "" } depth++ }
    else if (ch == "}") {
      if (--depth == 0) {
        # After a body: a struct/enum/union definition continues to its
        # ";" (typedef names, variables); a function body ends here.
        if (body ~ /(^|[ ])(struct|union|enum)([ ]+[A-Za-z_0-9]+)?[ ]*$/ || body ~ /=[ ]*$/) { stmt = body " {}"; sfile = bfile }
        else stmt = ""
      }
    }
    else if (depth == 0) flush()
  }
}
' "$tmp/pp.i" | sort > "$tmp/api"

fail=0
if [ -s "$tmp/unparsed" ]; then
  echo "KART_API declarations whose name this test cannot read:"; sed 's/^/  /' "$tmp/unparsed"; fail=1
fi
if [ -s "$tmp/bare" ]; then
  echo "kart_ declarations in include/ without KART_API (not exported):"; sed 's/^/  /' "$tmp/bare"; fail=1
fi
if [ ! -s "$tmp/api" ]; then
  echo "no KART_API declarations found in include/ (is the preprocessing broken?)"; exit 1
fi
if [ -n "$(uniq -d "$tmp/api")" ]; then
  echo "declared with KART_API more than once:"; uniq -d "$tmp/api" | sed 's/^/  /'; fail=1
fi
sort -u -o "$tmp/api" "$tmp/api"

# 2. What the map says: "node symbol" for every global name, and the
# nodes. Names are listed one by one (no patterns), so that a new public
# function is a decision recorded in the map, in the node of its release.
awk -v nodes="$tmp/nodes" -v errs="$tmp/maperr" '
{ text = text "\n" $0 }
END {
  gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, " ", text)   # /* comments */
  gsub(/[{};]/, " & ", text)
  n = split(text, tok, /[ \t\n]+/)
  state = "node"
  for (i = 1; i <= n; i++) {
    t = tok[i]; if (t == "") continue
    if (state == "node") {
      if (t == ";") continue
      node = t; state = "open"
    } else if (state == "open") {
      if (t != "{") { print "expected { after " node > errs; exit }
      scope = ""; state = "body"
    } else if (state == "body") {
      if (t == "}") { state = "tail"; continue }
      if (t == "global:" || t == "local:") { scope = t; continue }
      if (t == ";") continue
      if (scope == "global:") {
        if (t ~ /[*?\[]/) print node ": pattern " t " (list each name)" > errs
        else print node, t
      } else if (scope == "local:") {
        if (t == "*") haslocal = 1
      } else print node ": " t " outside global:/local:" > errs
    } else if (state == "tail") {
      if (t == ";") { print node > nodes; state = "node" }   # after the node it extends, if any
    }
  }
  if (!haslocal) print "no \"local: *;\": symbols outside the map would be exported" > errs
}' "$map" | sort -k2 > "$tmp/mapsyms"
if [ -s "$tmp/maperr" ]; then
  echo "$map:"; sed 's/^/  /' "$tmp/maperr"; fail=1
fi
cut -d' ' -f2 "$tmp/mapsyms" > "$tmp/map"
if [ -n "$(uniq -d "$tmp/map")" ]; then
  echo "listed in $map more than once:"; uniq -d "$tmp/map" | sed 's/^/  /'; fail=1
fi
sort -u -o "$tmp/map" "$tmp/map"
if ! cmp -s "$tmp/api" "$tmp/map"; then
  comm -23 "$tmp/api" "$tmp/map" | sed 's/^/  /' > "$tmp/d1"
  comm -13 "$tmp/api" "$tmp/map" | sed 's/^/  /' > "$tmp/d2"
  [ -s "$tmp/d1" ] && { echo "declared with KART_API but not in $map (add them to the newest node):"; cat "$tmp/d1"; }
  [ -s "$tmp/d2" ] && { echo "in $map but not declared with KART_API:"; cat "$tmp/d2"; }
  fail=1
fi

# 3. What the library exports: "name version" per defined dynamic symbol.
# ld.bfd also lists each version node as an absolute symbol (type A);
# lld does not: the nodes are read from the version definitions instead.
nm -D --defined-only "$so" > "$tmp/nm"
awk '$2 == "A" { next }
  { v = $3; n = v; if (sub(/@@?.*/, "", n)) sub(/^[^@]*@@?/, "", v); else v = "-"; print n, v }' \
  "$tmp/nm" | sort > "$tmp/sosyms"
cut -d' ' -f1 "$tmp/sosyms" | sort -u > "$tmp/exported"
if ! cmp -s "$tmp/api" "$tmp/exported"; then
  comm -23 "$tmp/api" "$tmp/exported" | sed 's/^/  /' > "$tmp/d1"
  comm -13 "$tmp/api" "$tmp/exported" | sed 's/^/  /' > "$tmp/d2"
  [ -s "$tmp/d1" ] && { echo "declared with KART_API but not exported by $so:"; cat "$tmp/d1"; }
  [ -s "$tmp/d2" ] && { echo "exported by $so but not declared with KART_API:"; cat "$tmp/d2"; }
  fail=1
fi
# The version nodes are those of the map: readelf's version definitions,
# less the BASE one (the soname). Not the node each extends: lld leaves
# that out, and the dynamic linker never reads it.
readelf -V -W "$so" | awk '
  /^Version definition section/ { on = 1; next }
  /^Version / { on = 0; next }
  on && / Name: / && !/Flags: BASE/ { sub(/.* Name: /, ""); print }' | sort > "$tmp/sonodes"
sort -u "$tmp/nodes" > "$tmp/mapnodes"
if ! cmp -s "$tmp/mapnodes" "$tmp/sonodes"; then
  echo "version nodes: $map has [$(paste -sd' ' "$tmp/mapnodes")], $so defines [$(paste -sd' ' "$tmp/sonodes")]"
  fail=1
fi
# Every export carries the version of the node that lists it, as the
# default (@@) version.
if ! grep -q '@@' "$tmp/nm"; then
  echo "$so exports no versioned symbols: was it linked with --version-script=$map?"
  exit 1
fi
join -j1 -o '1.1,1.2,2.2' <(awk '{print $2, $1}' "$tmp/mapsyms" | sort) "$tmp/sosyms" \
  | awk '$2 != $3 { print "  " $1 ": exported as " ($3 == "-" ? "unversioned" : $3) ", " m " says " $2 }' m="$map" > "$tmp/dv"
# The @@ default marker itself: a plain @ is a hidden (compatibility) version.
grep -E ' kart_[a-z0-9_]+@[^@]' "$tmp/nm" | awk '{ print "  " $3 ": not the default version" }' >> "$tmp/dv"
if [ -s "$tmp/dv" ]; then
  echo "exports at the wrong version:"; cat "$tmp/dv"; fail=1
fi

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "exports test passed: $(wc -l < "$tmp/api") symbols, nodes $(paste -sd' ' "$tmp/mapnodes") ($so)"
