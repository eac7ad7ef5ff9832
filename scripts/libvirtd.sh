#!/usr/bin/env bash
# Start virtlogd and libvirtd (for the tests against a real libvirtd with
# QEMU) unless they already run. There is no systemd here; as root only.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "libvirtd: not root, not starting libvirtd (its tests will be skipped with the reason)"
  exit 0
fi
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 50); do
  [[ -S /run/libvirt/libvirt-sock ]] && exit 0
  sleep 0.1
done
echo "libvirtd: socket /run/libvirt/libvirt-sock did not appear" >&2
