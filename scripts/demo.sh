#!/usr/bin/env bash
# The README's "run" command: set up, create the example's git repositories
# and API token (first run only), and run pushgate on config/example/:
# validate the config, open the database, resolve every branch's revisions
# (fetching the mirrors), list the frozen refs, then one complete cycle per
# branch. Pass --daemon to go on with the daemon in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/example-repos.sh
daemon=false
[[ ${1:-} == --daemon ]] && daemon=true
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
  for _ in 1 2; do
    rc=0
    pg flight run "$branch" || rc=$?
    case $rc in
      0) ;;
      3) echo "(flight of $branch not tolerable: exit 3)" ;;
      5) echo "(flight of $branch tolerable, not pushed: exit 5)" ;;
      *) exit "$rc" ;;
    esac
  done
done
pg branch status --no-fetch
cat <<'MSG'

Done. What ran: config validation, the SQLite store (var/example/pushgate.db),
libgit2 mirrors under var/example/mirrors, revision resolution with the frozen
ref osstest/frozen/xen-4.7-testing, flights on local and libvirt test:///
hosts (logs under var/example/logs), verdicts, reports and pushes into
var/example/upstream.

Next, the daemon on the same config (polls xen-unstable every minute, serves
the board at http://127.0.0.1:8480/, the API under /api/v1/, /metrics; the
API token is in var/example/api-token; Ctrl-C drains and stops it):
  build/pushgate --config config/example/pushgate.json daemon
Not built yet: bisection. Every command has --help.
MSG
if $daemon; then
  pg daemon
fi
