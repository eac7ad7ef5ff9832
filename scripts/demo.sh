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
# One complete cycle per branch: resolve, build, test on the local and
# libvirt test:/// hosts, judge against the baseline, push when tolerable.
# A branch's first flight is a baseline flight (it tests the tested ref
# itself); the next one tests the input ref and pushes it.
for branch in xen-unstable xen-4.7-testing; do
  pg flight run "$branch" || echo "(flight of $branch not tolerable: exit $?)"
  pg flight run "$branch" || echo "(flight of $branch not tolerable: exit $?)"
done
pg branch status --no-fetch
cat <<'MSG'

Done. What ran: config validation, the SQLite store (var/example/pushgate.db),
libgit2 mirrors under var/example/mirrors, revision resolution with the frozen
ref osstest/frozen/xen-4.7-testing, flights on local and libvirt test:///
hosts (logs under var/example/logs), verdicts, reports and pushes into
var/example/upstream. Not built yet: the daemon (schedules, HTTP API, web
pages, metrics) and bisection. Try: build/pushgate --config config/example/pushgate.json --help
MSG
