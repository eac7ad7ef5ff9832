#!/usr/bin/env bash
# Set up (packages + build) and run every test.
#   scripts/test.sh              the normal build
#   scripts/test.sh --sanitize   the ASan+UBSan build, tests run again
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
scripts/libvirtd.sh
build_dir=build
[[ "${1:-}" == "--sanitize" ]] && build_dir=build-sanitize
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build_dir" --output-on-failure -j 2
