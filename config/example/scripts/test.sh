#!/bin/sh
# Example test step: "boot" or "guest-start" against the built tree. It
# fails when the source under test contains BREAK-BOOT / BREAK-GUEST, so a
# commit can break a test on purpose.
set -eu
what=$1
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -xf "$PUSHGATE_BUILD_DIR/dist.tar" -C "$src"
case $what in
  boot) marker=BREAK-BOOT ;;
  guest-start) marker=BREAK-GUEST ;;
  *) echo "unknown test $what" >&2; exit 2 ;;
esac
if grep -q "$marker" "$src/CHANGES"; then
  echo "$what failed on $PUSHGATE_HOST: the source says $marker" >&2
  exit 1
fi
echo "$what passed on $PUSHGATE_HOST"
