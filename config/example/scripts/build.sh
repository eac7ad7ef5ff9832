#!/bin/sh
# Example build step: export the xen revision under test from the mirror and
# "build" it into $PUSHGATE_WORKDIR/dist.tar. A real harness compiles here.
set -eu
rev=$PUSHGATE_RV_revision_xen
mkdir -p "$PUSHGATE_WORKDIR/src"
git --git-dir="$PUSHGATE_MIRROR_XEN" archive "$rev" | tar -x -C "$PUSHGATE_WORKDIR/src"
if grep -q "BREAK-BUILD" "$PUSHGATE_WORKDIR/src/CHANGES" 2>/dev/null; then
  echo "build failed: the source says BREAK-BUILD" >&2
  exit 1
fi
tar -cf "$PUSHGATE_WORKDIR/dist.tar" -C "$PUSHGATE_WORKDIR/src" .
echo "built xen $rev"
echo "built_revision_xen=$rev" >> "$PUSHGATE_OUTPUTS"
echo "path_dist=$PUSHGATE_WORKDIR/dist.tar" >> "$PUSHGATE_OUTPUTS"
