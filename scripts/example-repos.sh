#!/usr/bin/env bash
# Create the example's data (once): an API token in var/example/api-token
# and the upstream repositories under var/example/upstream: xen with staging/master/staging-4.7/stable-4.7 and release tags,
# qemu with master, libvirt with master, xen-tested-master and the frozen
# ref osstest/frozen/xen-4.7-testing. The git CLI is used here only to make
# demo data; pushgate itself does all git work through libgit2.
set -euo pipefail
cd "$(dirname "$0")/.."
up=var/example/upstream
# The API token the example daemon reads (daemon.api_token_file), made once.
mkdir -p var/example
if [[ ! -s var/example/api-token ]]; then
  (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > var/example/api-token)
  echo "example-repos: wrote an API token to var/example/api-token"
fi
if [[ -d $up/xen.git && -d $up/qemu.git && -d $up/libvirt.git ]]; then
  echo "example-repos: $up already exists"
  exit 0
fi
rm -rf "$up" var/example/work
mkdir -p "$up" var/example/work
export GIT_AUTHOR_NAME="Example Developer" GIT_AUTHOR_EMAIL="dev@example.org"
export GIT_COMMITTER_NAME="Example Developer" GIT_COMMITTER_EMAIL="dev@example.org"
g() { git -c init.defaultBranch=master -c advice.detachedHead=false "$@"; }
commit() {  # commit DIR MESSAGE
  echo "$2" >> "$1/CHANGES"
  g -C "$1" add CHANGES
  g -C "$1" commit -q -m "$2"
}
publish() {  # publish WORKDIR NAME BRANCHES...: a bare upstream with those branches and all tags
  local w=$1 name=$2
  shift 2
  g clone -q --bare "$w" "$up/$name.git"
  for b in "$@"; do g -C "$up/$name.git" branch -f "$b" "$(g -C "$w" rev-parse "$b")"; done
}

# xen: master is the tested ref, staging one commit ahead; 4.7 likewise.
w=var/example/work/xen
g init -q "$w"
commit "$w" "xen: initial import"
commit "$w" "xen: hypervisor core"
g -C "$w" tag -a RELEASE-4.7.0 -m "Xen 4.7.0"
g -C "$w" branch stable-4.7
commit "$w" "xen: 4.8 development starts"
g -C "$w" checkout -q -b staging
commit "$w" "xen: x86/vmx: new feature"
g -C "$w" checkout -q -b staging-4.7 stable-4.7
commit "$w" "xen: 4.7 backport: fix XSA-1"
g -C "$w" checkout -q master
publish "$w" xen staging staging-4.7 stable-4.7

# qemu
w=var/example/work/qemu
g init -q "$w"
commit "$w" "qemu: initial import"
g -C "$w" tag -a v2.6.0 -m "QEMU 2.6.0"
commit "$w" "qemu: xen-hvm: machine type"
publish "$w" qemu

# libvirt: tested ref behind master, and a frozen ref for xen-4.7-testing.
w=var/example/work/libvirt
g init -q "$w"
commit "$w" "libvirt: initial import"
g -C "$w" tag -a v1.3.0 -m "libvirt 1.3.0"
commit "$w" "libvirt: libxl: driver fixes"
g -C "$w" branch osstest/frozen/xen-4.7-testing
commit "$w" "libvirt: more changes"
g -C "$w" branch xen-tested-master
commit "$w" "libvirt: newest change"
publish "$w" libvirt osstest/frozen/xen-4.7-testing xen-tested-master

rm -rf var/example/work
echo "example-repos: created xen, qemu and libvirt under $up"
