#!/usr/bin/env bash
# The README's "run" command: set up, create the example's git repositories
# (first run only), and run pushgate on config/example/ as far as the product
# goes today: validate the config, open the database, resolve every branch's
# revisions (fetching the mirrors) and list the frozen refs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/example-repos.sh
pg() { echo "+ pushgate $*" >&2; build/pushgate --config config/example/pushgate.json "$@"; }
pg config check
pg db status
for branch in xen-unstable xen-4.7-testing libvirt; do
  pg revisions "$branch"
done
pg frozen list --no-fetch
cat <<'MSG'

Done. What ran: config validation, the SQLite store (var/example/pushgate.db),
libgit2 mirrors under var/example/mirrors, per-branch revision resolution
with the frozen ref osstest/frozen/xen-4.7-testing, and the frozen-ref list.
Not built yet: running flights on hosts, the verdict and push, the daemon
(see the open issues). Try: build/pushgate --config config/example/pushgate.json --help
MSG
