#!/usr/bin/env bash
# The Debian package, built and checked (issue 16 item 1):
#   scripts/package-test.sh BUILD_DIR          build it with CPack, unpack it
#       into a scratch root, check what it installs, run `pushgate --version`
#       and `config check` on the installed /etc/pushgate example (the token
#       made as its postinst would), the unit files and the bash completion.
#   scripts/package-test.sh BUILD_DIR --dpkg   also `dpkg -i` it for real,
#       run the installed pushgate with the default config path, then purge
#       it (CI, after every other test: it writes to /etc and /var).
set -euo pipefail
build=$(cd "$1" && pwd)
mode=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "package-test: $*"; }
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

rm -rf "$build/packages"
(cd "$build" && cpack -G DEB --config CPackConfig.cmake >/dev/null) || fail "cpack"
deb=$(ls "$build"/packages/pushgate_*.deb)
say "built $(basename "$deb")"

info=$(dpkg-deb --info "$deb")
grep -q "^ Package: pushgate" <<<"$info" || fail "no Package field"
deps=$(dpkg-deb --field "$deb" Depends)
for d in libgit2 libsqlite3 libvirt0 libsystemd0 git openssh-client; do
  grep -q "$d" <<<"$deps" || fail "Depends lacks $d: $deps"
done
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/pushgate/pushgate.json <<<"$conffiles" || fail "/etc/pushgate/pushgate.json is not a conffile: $conffiles"
for s in postinst prerm postrm; do
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$s" | sh -n || fail "$s does not parse"
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
for f in usr/bin/pushgate usr/lib/systemd/system/pushgate.service usr/lib/systemd/system/pushgate-gc.service \
         usr/lib/systemd/system/pushgate-gc.timer usr/lib/sysusers.d/pushgate.conf usr/lib/tmpfiles.d/pushgate.conf \
         usr/share/man/man1/pushgate.1 usr/share/bash-completion/completions/pushgate \
         usr/share/doc/pushgate/README.md usr/share/doc/pushgate/operations.md \
         usr/share/pushgate/schemas/api/openapi.json etc/pushgate/pushgate.json etc/pushgate/scripts/build.sh; do
  [[ -e $root/$f ]] || fail "the package has no /$f"
done
unit=$root/usr/lib/systemd/system/pushgate.service
grep -qx "Type=notify" "$unit" || fail "pushgate.service is not Type=notify"
grep -q "^WatchdogSec=" "$unit" || fail "pushgate.service has no watchdog"
grep -qx "ExecStart=/usr/bin/pushgate --config /etc/pushgate/pushgate.json daemon" "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
if command -v systemd-analyze >/dev/null; then
  # Checks every unit file's syntax; a missing /usr/bin/pushgate on this
  # machine (only in the scratch root) is expected and filtered out.
  # The Documentation= man page is not installed on this machine either.
  out=$(cd "$root/usr/lib/systemd/system" && systemd-analyze verify pushgate.service pushgate-gc.service pushgate-gc.timer 2>&1 |
        grep -v -e "is not executable" -e "No such file" -e "Failed to prepare filename" -e "Command .* is not" \
                -e "Command 'man " || true)
  [[ -z $out ]] || fail "systemd-analyze verify: $out"
fi
grep -q "^u pushgate " "$root/usr/lib/sysusers.d/pushgate.conf" || fail "sysusers.d makes no pushgate user"

pg=$root/usr/bin/pushgate
"$pg" --version | grep -q "^pushgate " || fail "--version"
say "$("$pg" --version)"
# What postinst does on first install: an API token beside the config.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$root/etc/pushgate/api-token"
"$pg" --config "$root/etc/pushgate/pushgate.json" config check || fail "config check on the installed example"
"$pg" --config "$root/etc/pushgate/pushgate.json" config check --json | grep -q '"valid": true' || fail "config check --json"
# Without a token the daemon would refuse: so does config check.
rm "$root/etc/pushgate/api-token"
if "$pg" --config "$root/etc/pushgate/pushgate.json" config check 2>/dev/null; then fail "config check passed without the token"; fi

# Completion, from the installed binary's own --help.
words=$(PATH="$root/usr/bin:$PATH" bash -c 'source "$1"; COMP_WORDS=(pushgate fli); COMP_CWORD=1; _pushgate; echo "${COMPREPLY[@]}"' _ \
        "$root/usr/share/bash-completion/completions/pushgate")
[[ $words == flight ]] || fail "completion of 'pushgate fli': '$words'"
words=$(PATH="$root/usr/bin:$PATH" bash -c 'source "$1"; COMP_WORDS=(pushgate --config x flight ""); COMP_CWORD=4; _pushgate; echo "${COMPREPLY[@]}"' _ \
        "$root/usr/share/bash-completion/completions/pushgate")
for w in create run show list; do grep -qw "$w" <<<"$words" || fail "completion of 'pushgate flight ': '$words'"; done
say "scratch root: files, unit, config check, completion: ok"

if [[ $mode == --dpkg ]]; then
  sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" dpkg -i "$deb" >/dev/null || fail "dpkg -i"
  trap '"${sudo[@]}" dpkg --purge pushgate >/dev/null || true; rm -rf "$root"' EXIT
  getent passwd pushgate >/dev/null || fail "postinst made no pushgate user"
  [[ -s /etc/pushgate/api-token ]] || fail "postinst made no API token"
  [[ $(stat -c %a /etc/pushgate/api-token) == 600 ]] || fail "api-token mode $(stat -c %a /etc/pushgate/api-token)"
  [[ -d /var/lib/pushgate/logs ]] || fail "tmpfiles made no /var/lib/pushgate/logs"
  /usr/bin/pushgate --version >/dev/null || fail "installed --version"
  # The default config path: no --config, no $PUSHGATE_CONFIG.
  (unset PUSHGATE_CONFIG; cd /; /usr/bin/pushgate config check) || fail "installed config check (default path)"
  say "dpkg -i: user, token, directories, default config: ok"
fi
say "PASS"
