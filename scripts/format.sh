#!/usr/bin/env bash
# Formats every tracked C file with .clang-format (clang-format 14, the one
# Debian 12 ships); with --check, changes nothing and fails, naming the
# files, when one is not formatted. Used by `make format` / `make
# format-check` (run by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=
for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null; then fmt=$c; break; fi
done
if [ -z "$fmt" ]; then
    echo "format: clang-format not found (Debian: apt-get install clang-format-14)" >&2
    exit 2
fi
major=$("$fmt" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$major" != 14 ]; then
    echo "format: $fmt is version $major; .clang-format is checked with 14 and other" \
         "versions lay out some lines differently" >&2
fi
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --check ]; then
    # One clang-format per CPU (one at a time took 41 s of CI).
    bad=$(printf '%s\n' "${files[@]}" |
        xargs -P "$(nproc)" -I{} sh -c '"$0" --style=file "$1" | cmp -s - "$1" || echo "$1"' "$fmt" {} |
        sort | tr '\n' ' ')
    if [ -n "$bad" ]; then
        echo "format: not formatted (run make format): $bad" >&2
        exit 1
    fi
    echo "format: ${#files[@]} files formatted"
else
    "$fmt" --style=file -i "${files[@]}"
fi
