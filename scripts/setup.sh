#!/usr/bin/env bash
# Install the Debian packages pushgate needs (only the missing ones), then
# configure and build. Idempotent: a second run installs nothing and only
# rebuilds what changed.
#
#   scripts/setup.sh              build into build/
#   scripts/setup.sh --sanitize   build with ASan+UBSan into build-sanitize/
#   scripts/setup.sh --release    a Release build without tests into build-release/
#                                 (what a packager builds; CI checks it compiles)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
build_type=RelWithDebInfo
cmake_args=(-DPUSHGATE_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr)
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-sanitize
  cmake_args+=(-DPUSHGATE_SANITIZE=ON -DPUSHGATE_BENCH=OFF)
elif [[ "${1:-}" == "--release" ]]; then
  build_dir=build-release
  build_type=Release
  cmake_args+=(-DPUSHGATE_TESTS=OFF)
fi

packages=(
  cmake g++ ninja-build pkg-config
  libgit2-dev libsqlite3-dev libboost-dev libspdlog-dev nlohmann-json3-dev
  libvirt-dev libcli11-dev libvalijson-dev libgtest-dev libhowardhinnant-date-dev
  # git: the mirror transport for local upstreams (docs/architecture.md),
  # the tests' independent oracle and the example's build script; tzdata:
  # the tz database cron reads
  git tzdata
  # graphviz: `dot` draws bisection graphs (docs/bisection.md)
  graphviz
  # mustache templates for the web pages (docs/web.md)
  libmstch-dev
  # notifications: SMTP (STARTTLS, AUTH) and webhooks over HTTP(S) (docs/notifications.md)
  libcurl4-openssl-dev
  # the systemd service: readiness and watchdog (sd_notify); the Debian
  # package: man page from --help, dpkg-shlibdeps for its dependencies
  libsystemd-dev help2man dpkg-dev file
  # used by tests only: sqlite3 to poke at databases, setpriv (util-linux) to drop
  # privileges, a real sshd for bare-metal hosts, a real libvirtd with QEMU,
  # croniter as the independent oracle for cron times, time zones for DST,
  # headless Chromium to load the web pages
  sqlite3 util-linux openssh-server openssh-client libvirt-daemon-system qemu-system-x86
  python3 python3-croniter chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present"
fi

jobs=$(nproc 2>/dev/null || echo 2)
((jobs > 2)) && jobs=2   # keep memory use of Boost/nlohmann compiles modest
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$jobs"
