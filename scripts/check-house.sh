#!/usr/bin/env bash
# check-house.sh — the dependency rules of DESIGN.md ("core/ reaches a
# backend only through these tables, never by a function's name; no backend
# names another; numa/ depends on nothing else in the library but the log;
# bench/ and examples/ use only the public headers") and the layers of
# core/pool/ (docs/ARCHITECTURE.md), checked over the #include lines and
# the names the code uses. Prints each violation as
# `file:line: rule: text` and exits 1 if there is any.
#
#   core-names-backend     a file under core/ includes a header of uring/ or
#                          compat/ (or <liburing.h>), or names a function or
#                          variable that only uring/ or compat/ defines. The
#                          backends' tables (const variables of a type core/
#                          defines: kart__backend_epoll, a kart__backend_ops,
#                          and the completion modes' tables) are the contract
#                          itself, named where core registers them: they pass.
#   backend-names-backend  one backend includes a header of another or names
#                          what only another defines (ops tables included):
#                          uring/ is one backend, each file of compat/ one
#                          (epoll, poll, select, kqueue, and io_emul.c, the
#                          emulated completion mode); compat/ including
#                          <liburing.h> counts too.
#   numa-alone             numa/ includes a header of the library outside
#                          numa/ other than the public ones and those in
#                          NUMA_INCLUDES, or names a function or variable
#                          defined outside numa/ other than NUMA_NAMES.
#   public-only            bench/ or examples/ include a header that is
#                          neither public (<kart.h>, <kart/...>), a system
#                          header, nor one of their own folder, or name a
#                          private kart__ / KART__ identifier.
#   pool-layers            core/pool/ is built in layers (POOL_LAYERS, lowest
#                          first: memory, the engine, the engine's clients
#                          (submit, futures, imap, process workers), the
#                          pool): a file of one layer includes a header of a
#                          higher layer, or names a function, variable, table
#                          or type that only a higher layer defines. The
#                          engine reaches its clients through the hooks it is
#                          given (kart__pool_hooks, a job's notify), never by
#                          name.
#
# "Defines" is read from the sources: non-static functions and variables at
# file scope of the .c files, and every function defined in a header
# (static inlines included). A name counts wherever it appears in code, not
# in comments or string literals: a call, a pointer taken, a declaration.
# Macros are not followed, nor is a name resolved through #ifdefs (the
# sources are read whole, every configuration at once). Run from anywhere;
# it reads the tree it sits in. `make check-house` runs it.
set -u
cd "$(dirname "$0")/.."
export LC_ALL=C

# What numa/ may use of the rest of the library: the log (DESIGN.md), which
# is kart__log (the runtime's log), declared in core/base/debug.h.
NUMA_INCLUDES="debug.h"
NUMA_NAMES="kart__log"
# Files in compat/ that are not backends: futex_parking.c is the portable
# implementation of core/base/futex.h's kart__futex_wait/wake for systems
# without futex(2) (chosen at build time by KART__FUTEX_NATIVE, not through
# a backend table). Its functions are core's interface, which every part of
# the library may call.
NOT_BACKENDS="compat/futex_parking.c"
# The layers of core/pool/, lowest first, each a list of files (a layer's
# header goes with it): memory, the engine, the engine's clients, the pool.
POOL_DIR=core/pool
POOL_LAYERS=(
  "pool_mem.c pool_mem.h"
  "pool_job.c pool_job.h"
  "pool_submit.c pool_future.c pool_many.c pool_imap.c pool_proc.c pool_private.h"
  "pool.c"
)
# core/base/fault.c, the test builds' system-call table, wraps liburing's
# entry points too (so that a test can fail io_uring_enter): it may
# include <liburing.h>. It is not part of the library build.

files_in() {   # the .c and .h files of the given folders (sorted)
  local d
  for d in "$@"; do
    [ -d "$d" ] && find "$d" \( -name '*.c' -o -name '*.h' \) -type f
  done | sort
}
without() {    # the words of $1 that are not in $2
  local w
  for w in $1; do case " $2 " in *" $w "*) ;; *) echo "$w" ;; esac; done
}

core_files=$(files_in core)
uring_files=$(without "$(files_in uring)" "$NOT_BACKENDS")
compat_files=$(without "$(files_in compat)" "$NOT_BACKENDS")
numa_files=$(files_in numa)
public_files=$(files_in bench examples)
# Everything else of the library that defines names core/ may use.
other_lib_files=$(files_in $NOT_BACKENDS)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
US=$'\037'

# strip FILES: one record per source line, "file US line US code US orig",
# where code has comments, string and character literals blanked (so
# that names inside them do not count) and orig is the line as written.
# An #include line keeps its header name in code.
strip() {
  [ $# -gt 0 ] || return 0
  awk -v US="$US" '
  BEGIN { sq = sprintf("%c", 39) }
  FNR == 1 { incomment = 0 }
  {
    orig = $0; out = ""; n = length(orig); i = 1
    isinc = (!incomment && orig ~ /^[ \t]*#[ \t]*include/)
    while (i <= n) {
      c = substr(orig, i, 1); c2 = substr(orig, i, 2)
      if (incomment) {
        if (c2 == "*/") { incomment = 0; out = out "  "; i += 2 } else { out = out " "; i++ }
      } else if (c2 == "/*") { incomment = 1; out = out "  "; i += 2
      } else if (c2 == "//") { break
      } else if ((c == "\"" || c == sq) && !isinc) {
        q = c; out = out q; i++
        while (i <= n) {
          c = substr(orig, i, 1)
          if (c == "\\") { out = out "  "; i += 2; continue }
          if (c == q) break
          out = out " "; i++
        }
        out = out q; i++
      } else { out = out c; i++ }
    }
    print FILENAME US FNR US out US orig
  }' "$@"
}

# defs: reads strip records, prints "name kind file" for what each file
# defines: kind is "fn" (a function: non-static, or any in a header),
# "var" (a variable; a const one is "cvar TYPE", TYPE the last name of its
# type) or "type" (a typedef name or a struct, union or enum tag). File-
# scope statements are read between ";", "{" and "}", skipping bodies and
# preprocessor lines. classify then makes a cvar whose type core/ defines
# an "ops" table, the others plain "var".
defs() {
  awk -F "$US" '
  function strip_attr(s,   out, i, c, d) {
    out = ""
    while ((i = index(s, "__attribute__")) > 0) {
      out = out substr(s, 1, i - 1); s = substr(s, i + 13); d = 0
      for (c = 1; c <= length(s); c++) {
        if (substr(s, c, 1) == "(") d++
        else if (substr(s, c, 1) == ")") { if (--d == 0) break }
      }
      s = substr(s, c + 1)
    }
    return out s
  }
  function lastident(s) { sub(/[^A-Za-z0-9_]+$/, "", s); sub(/.*[^A-Za-z0-9_]/, "", s); return s }
  # A file-scope statement ended by ";" (terminator ";") or a body ("{").
  function statement(s, term,   head, name, type, isstatic) {
    s = strip_attr(s); gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
    if (s == "") return
    isstatic = (s ~ /(^| )static /)
    if (s ~ /^typedef /) {
      if (match(s, /\( *\* *[A-Za-z_][A-Za-z0-9_]*/)) name = lastident(substr(s, RSTART, RLENGTH))  # a function pointer
      else { head = s; sub(/ *\[.*/, "", head); name = lastident(head) }
      if (name != "") print name, "type", file
    }
    if (match(s, /(^|[ ])(struct|union|enum) [A-Za-z_][A-Za-z0-9_]* \{\}/)) {
      head = substr(s, RSTART, RLENGTH); sub(/ *\{\}$/, "", head); print lastident(head), "type", file
    }
    if (s ~ /^(typedef|extern|_Static_assert)[ (]/) return
    if (term == "{") {
      if (s ~ /=$/) {                          # an initialized variable
        head = s; sub(/ *=$/, "", head); sub(/ *\[[^]]*\]$/, "", head)
      } else if (index(s, "(") > 0) {          # a function body
        if (isstatic && !header) return
        head = substr(s, 1, index(s, "(") - 1)
        name = lastident(head)
        if (name ~ /^[A-Za-z_][A-Za-z0-9_]*$/ && name !~ /^(if|while|for|switch|return|sizeof)$/) print name, "fn", file
        return
      } else return                            # struct, union, enum
    } else {
      if (index(s, "(") > 0 && (index(s, "=") == 0 || index(s, "(") < index(s, "="))) return  # a prototype
      if (s ~ /^(struct|union|enum) [A-Za-z0-9_]+$/) return                                  # a tag
      if (s ~ /^(struct|union|enum)( [A-Za-z0-9_]+)? \{\}$/) return                          # a type
      head = s; sub(/ *=.*/, "", head); sub(/ *\[.*/, "", head)
    }
    if (isstatic) return
    name = lastident(head)
    type = head; sub(/[^A-Za-z0-9_]*[A-Za-z0-9_]+$/, "", type)
    if (name !~ /^[A-Za-z_][A-Za-z0-9_]*$/ || type == "") return
    if (type ~ /(^| )const( |$)/) print name, "cvar", file, lastident(type)
    else print name, "var", file
  }
  $1 != file { file = $1; depth = 0; stmt = ""; cont = 0; header = (file ~ /\.h$/) }
  {
    line = $3
    if (cont || line ~ /^[ \t]*#/) { cont = (line ~ /\\$/); next }
    while (line != "") {
      p = match(line, /[;{}]/)
      if (!p) { if (depth == 0) stmt = stmt " " line; break }
      ch = substr(line, p, 1); pre = substr(line, 1, p - 1); line = substr(line, p + 1)
      if (depth == 0) stmt = stmt " " pre
      if (ch == "{") {
        if (depth == 0) { body = stmt; stmt = "" }
        depth++
      } else if (ch == "}") {
        if (depth > 0 && --depth == 0) {
          # After a struct/union/enum body or an initializer the statement
          # goes on to its ";"; after a function body it is over.
          if (body ~ /(^|[^A-Za-z0-9_])(struct|union|enum)( +[A-Za-z_][A-Za-z0-9_]*)? *$/) stmt = body " {}"
          else { statement(body, "{"); stmt = "" }
        }
      } else if (depth == 0) { statement(stmt, ";"); stmt = "" }
    }
  }'
}

# uses RULE NAMESFILE [ALLOWED...] < records: a violation for each line
# whose code names a word listed in NAMESFILE (first column) and not
# allowed.
uses() {
  local rule=$1 names=$2; shift 2
  awk -F "$US" -v rule="$rule" -v names="$names" -v allowed="$*" '
  BEGIN {
    while ((getline l < names) > 0) {
      split(l, f, " ")
      if (!(f[1] in bad)) bad[f[1]] = f[3]
      else if (index(", " bad[f[1]] ", ", ", " f[3] ", ") == 0) bad[f[1]] = bad[f[1]] ", " f[3]
    }
    n = split(allowed, a, " "); for (i = 1; i <= n; i++) ok[a[i]] = 1
  }
  {
    if ($3 ~ /^[ \t]*#[ \t]*include/) next
    code = $3; gsub(/[^A-Za-z0-9_]+/, " ", code)
    n = split(code, w, " "); seen = ""
    for (i = 1; i <= n; i++) {
      if ((w[i] in bad) && !(w[i] in ok) && index(seen, " " w[i] " ") == 0) {
        seen = seen " " w[i] " "
        t = $4; sub(/^[ \t]+/, "", t)
        print $1 ":" $2 ": " rule ": " t "   [" w[i] ", defined in " bad[w[i]] "]"
      }
    }
  }'
}

# includes < records: "file US line US header US kind US orig" for each
# #include, kind "q" for "..." and "a" for <...>.
includes() {
  awk -F "$US" -v US="$US" '
  $3 ~ /^[ \t]*#[ \t]*include[ \t]*["<]/ {
    s = $3; sub(/^[ \t]*#[ \t]*include[ \t]*/, "", s)
    kind = (substr(s, 1, 1) == "\"") ? "q" : "a"
    s = substr(s, 2); sub(/[">].*/, "", s)
    print $1 US $2 US s US kind US $4
  }'
}
report() {     # RULE WHY < include records: the violation lines
  awk -F "$US" -v rule="$1" -v why="$2" '{ t = $5; sub(/^[ \t]+/, "", t); print $1 ":" $2 ": " rule ": " t "   [" why "]" }'
}

# The records and definitions of each part.
strip $core_files > "$tmp/core.r"
strip $uring_files > "$tmp/uring.r"
strip $compat_files > "$tmp/compat.r"
strip $numa_files > "$tmp/numa.r"
strip $public_files > "$tmp/public.r"
strip $other_lib_files > "$tmp/other.r"
for p in core uring compat numa other; do defs < "$tmp/$p.r" | sort -u > "$tmp/$p.d.raw"; done
# The contract's tables: const variables of a type that core/ defines
# (kart__backend_ops, the completion mode's kart__io_mode ...).
classify() {
  awk 'NR == FNR { if ($2 == "type") core[$1] = 1; next }
       $2 == "cvar" { print $1, (($4 in core) ? "ops" : "var"), $3; next }
       { print $1, $2, $3 }' "$tmp/core.d.raw" "$1"
}
for p in core uring compat numa other; do classify "$tmp/$p.d.raw" | sort -u > "$tmp/$p.d"; done
# only KINDS DEFS... MINUS...: definitions of the given kinds in the first
# list whose name is defined in none of the others.
only() {
  local kinds=$1 from=$2; shift 2
  cat "$@" /dev/null | cut -d' ' -f1 | sort -u > "$tmp/minus"
  awk -v kinds=" $kinds " 'index(kinds, " " $2 " ") > 0' "$from" | sort -k1,1 | join -v1 - "$tmp/minus"
}
private_headers() { local f; for f in "$@"; do case $f in *.h) echo "${f##*/}" ;; esac; done | sort -u; }

: > "$tmp/out"

# core-names-backend
only "fn var" "$tmp/uring.d" "$tmp/core.d" "$tmp/other.d" > "$tmp/a.names"
only "fn var" "$tmp/compat.d" "$tmp/core.d" "$tmp/other.d" >> "$tmp/a.names"
uses core-names-backend "$tmp/a.names" < "$tmp/core.r" >> "$tmp/out"
backend_headers=$(private_headers $uring_files $compat_files)
includes < "$tmp/core.r" | awk -F "$US" -v hs=" $(echo $backend_headers) " '
  { b = $3; sub(/.*\//, "", b) }
  ($4 == "q" && index(hs, " " b " ") > 0) || $3 ~ /(^|\/)(uring|compat)\// ||
  ($3 == "liburing.h" && $1 != FAULT_TABLE)' FAULT_TABLE=core/base/fault.c \
  | report core-names-backend "a backend header" >> "$tmp/out"

# backend-names-backend: between uring/ (one backend in two files) and
# each file of compat/ (epoll.c, poll.c, select.c, kqueue.c, io_emul.c:
# a backend each), in every direction.
units="uring $compat_files"
for u in $units; do
  id=$(echo "$u" | tr '/.' '__')
  if [ "$u" = uring ]; then cp "$tmp/uring.r" "$tmp/u.$id.r"
  else awk -F "$US" -v f="$u" '$1 == f' "$tmp/compat.r" > "$tmp/u.$id.r"; fi
  defs < "$tmp/u.$id.r" | sort -u > "$tmp/u.$id.d.raw"
  classify "$tmp/u.$id.d.raw" | sort -u > "$tmp/u.$id.d"
done
for u in $units; do
  id=$(echo "$u" | tr '/.' '__'); : > "$tmp/b.names"
  for v in $units; do
    [ "$v" = "$u" ] && continue
    only "fn var ops" "$tmp/u.$(echo "$v" | tr '/.' '__').d" "$tmp/core.d" "$tmp/other.d" "$tmp/u.$id.d" >> "$tmp/b.names"
  done
  uses backend-names-backend "$tmp/b.names" < "$tmp/u.$id.r" >> "$tmp/out"
done
includes < "$tmp/uring.r" | awk -F "$US" -v hs=" $(echo $(private_headers $compat_files)) " '
  { b = $3; sub(/.*\//, "", b) } ($4 == "q" && index(hs, " " b " ") > 0) || $3 ~ /(^|\/)compat\//' \
  | report backend-names-backend "a compat/ header" >> "$tmp/out"
includes < "$tmp/compat.r" | awk -F "$US" -v hs=" $(echo $(private_headers $uring_files)) " '
  { b = $3; sub(/.*\//, "", b) } ($4 == "q" && index(hs, " " b " ") > 0) || $3 ~ /(^|\/)uring\// || $3 == "liburing.h"' \
  | report backend-names-backend "a uring/ header" >> "$tmp/out"

# numa-alone
only "fn var ops" "$tmp/core.d" "$tmp/numa.d" > "$tmp/c.names"
only "fn var ops" "$tmp/uring.d" "$tmp/numa.d" >> "$tmp/c.names"
only "fn var ops" "$tmp/compat.d" "$tmp/numa.d" >> "$tmp/c.names"
only "fn var ops" "$tmp/other.d" "$tmp/numa.d" >> "$tmp/c.names"
uses numa-alone "$tmp/c.names" $NUMA_NAMES < "$tmp/numa.r" >> "$tmp/out"
# A quoted include must be numa/'s own or allowed; an angle one must not
# reach a private header of the library (through the build's -I folders).
lib_headers=$(private_headers $(files_in core uring compat))
numa_headers=$(private_headers $numa_files)
includes < "$tmp/numa.r" | awk -F "$US" -v lib=" $(echo $lib_headers) " -v own=" $(echo $numa_headers) " -v ok=" $NUMA_INCLUDES " '
  $4 == "q" && index(own, " " $3 " ") == 0 && index(ok, " " $3 " ") == 0 { print; next }
  $4 == "a" && $3 !~ /^kart(\.h$|\/)/ && index(lib, " " $3 " ") > 0 { print }' \
  | report numa-alone "a library header outside numa/" >> "$tmp/out"

# public-only: quoted includes name a file of the including file's folder;
# angle ones are public or system headers (no private header of the tree
# under that name through the library's -I folders).
all_private=$(private_headers $(files_in core uring compat numa))
includes < "$tmp/public.r" | awk -F "$US" -v priv=" $(echo $all_private) " '
  $4 == "q" {
    dir = $1; sub(/\/[^\/]*$/, "", dir)
    if ($3 ~ /\// || system("test -f \"" dir "/" $3 "\"") != 0) print
    next
  }
  $3 !~ /^kart(\.h$|\/)/ && index(priv, " " $3 " ") > 0' \
  | report public-only "not a public, system or own header" >> "$tmp/out"
awk -F "$US" -v rule=public-only '
  $3 !~ /^[ \t]*#[ \t]*include/ {
    code = $3; gsub(/[^A-Za-z0-9_]+/, " ", code); n = split(code, w, " "); seen = ""
    for (i = 1; i <= n; i++) if (w[i] ~ /^(kart__|KART__)/ && index(seen, " " w[i] " ") == 0) {
      seen = seen " " w[i] " "; t = $4; sub(/^[ \t]+/, "", t)
      print $1 ":" $2 ": " rule ": " t "   [" w[i] ", a private name]"
    }
  }' "$tmp/public.r" >> "$tmp/out"

# pool-layers: for each layer, what the layers above it define (less what
# it or a layer below defines too) must not be named in its files, and the
# headers of the layers above must not be included.
pool_files() {  # FROM TO: the existing files of layers FROM..TO
  local i f
  for ((i = $1; i <= $2; i++)); do
    for f in ${POOL_LAYERS[$i]}; do [ -f "$POOL_DIR/$f" ] && echo "$POOL_DIR/$f"; done
  done
}
top=$((${#POOL_LAYERS[@]} - 1))
for ((l = 0; l < top; l++)); do
  own=$(pool_files "$l" "$l"); below=$(pool_files 0 "$l"); above=$(pool_files $((l + 1)) "$top")
  [ -n "$own" ] && [ -n "$above" ] || continue
  strip $own > "$tmp/p.r"
  strip $below | defs | sort -u > "$tmp/p.below.raw"; classify "$tmp/p.below.raw" > "$tmp/p.below.d"
  strip $above | defs | sort -u > "$tmp/p.above.raw"; classify "$tmp/p.above.raw" > "$tmp/p.above.d"
  only "fn var ops type" "$tmp/p.above.d" "$tmp/p.below.d" > "$tmp/p.names"
  uses pool-layers "$tmp/p.names" < "$tmp/p.r" >> "$tmp/out"
  includes < "$tmp/p.r" | awk -F "$US" -v hs=" $(echo $(private_headers $above)) " '
    { b = $3; sub(/.*\//, "", b) } $4 == "q" && index(hs, " " b " ") > 0' \
    | report pool-layers "a header of a higher layer of core/pool" >> "$tmp/out"
done

if [ -s "$tmp/out" ]; then
  sort -t: -k1,1 -k2,2n "$tmp/out"
  echo "check-house: $(wc -l < "$tmp/out") violation(s)"
  exit 1
fi
echo "check-house: no violations"
