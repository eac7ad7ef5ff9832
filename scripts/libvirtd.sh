#!/usr/bin/env bash
# Start virtlogd and libvirtd (for the tests against a real libvirtd with
# QEMU) unless they already run. There is no systemd here; as root only.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "libvirtd: not root, not starting libvirtd (its tests will be skipped with the reason)"
  exit 0
fi
# What udev does on a Debian host, missing in a container: /dev/kvm for
# the kvm group, which QEMU's user (libvirt-qemu) is in. Without it libvirtd
# finds KVM "gone" on every lookup and probes QEMU again (30 s per define).
if [[ -c /dev/kvm ]] && getent group kvm >/dev/null; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm || true
fi
# The system daemons are looked for by their sockets: a test may run a
# private libvirtd of its own (as another user), which pgrep would also find.
# A socket left by a daemon that died (a machine restored from a snapshot,
# a killed container) is not a daemon: one that nobody answers is removed.
if [[ -S /run/libvirt/libvirt-sock ]] && ! timeout 10 virsh -c qemu:///system uri >/dev/null 2>&1; then
  rm -f /run/libvirt/libvirt-sock /run/libvirt/libvirt-sock-ro /run/libvirt/libvirt-admin-sock /run/libvirt/virtlogd-sock \
    /run/libvirt/virtlogd-admin-sock
fi
[[ -S /run/libvirt/virtlogd-sock ]] || virtlogd -d
[[ -S /run/libvirt/libvirt-sock ]] || libvirtd -d
for _ in $(seq 50); do
  [[ -S /run/libvirt/libvirt-sock ]] && exit 0
  sleep 0.1
done
echo "libvirtd: socket /run/libvirt/libvirt-sock did not appear" >&2
