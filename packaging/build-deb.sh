#!/usr/bin/env bash
# Build the Debian package (debian/) with Debian's own tools, in a copy of the tree, and put
# recsched_<version>_<arch>.deb in OUTDIR (default: dist/):
#
#   packaging/build-deb.sh [OUTDIR]
#
# Needs the build dependencies of debian/control (apt-get install --no-install-recommends
# build-essential debhelper python3.11-venv ca-certificates); pip fetches recsched's Python
# dependencies from PyPI into the package's virtualenv. Works from a git checkout (tracked and
# untracked-but-not-ignored files) or an unpacked sdist.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$here/dist}" && cd "${1:-$here/dist}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/recsched-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/recsched"

if git -C "$here" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$here" ls-files -co --exclude-standard -z |
    (cd "$here" && xargs -0 -r sh -c 'for f; do [ -f "$f" ] && printf "%s\0" "$f"; done' sh) |
    tar -C "$here" --null -T - -cf - | tar -C "$work/recsched" -xf -
else
  tar -C "$here" --exclude=./.venv --exclude=./dist --exclude='*.egg-info' -cf - . |
    tar -C "$work/recsched" -xf -
fi
rm -rf "$work/recsched"/*.egg-info "$work/recsched/build"

(cd "$work/recsched" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; echo "build-deb: dpkg-buildpackage failed" >&2; exit 1; }
for deb in "$work"/recsched_*.deb; do
  cp "$deb" "$out/"
  echo "$out/$(basename "$deb")"
done
