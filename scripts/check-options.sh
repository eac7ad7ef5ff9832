#!/usr/bin/env bash
# Every documented CMake option combination configures (issue 16): tests,
# benchmarks, sanitizers and warnings-as-errors on and off, in Release and
# RelWithDebInfo. Configure only (CI builds the Release/no-tests variant
# with `scripts/setup.sh --release`, the others are built by the normal and
# sanitizer runs). Scratch build trees go under $1 (default: a temp dir).
#
#   scripts/check-options.sh [SCRATCH_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch"
failed=0
n=0
for type in Release RelWithDebInfo; do
  for tests in ON OFF; do
    for bench in ON OFF; do
      for sanitize in ON OFF; do
        for werror in ON OFF; do
          dir="$scratch/$type-t$tests-b$bench-s$sanitize-w$werror"
          n=$((n + 1))
          if ! cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=$type -DPUSHGATE_TESTS=$tests \
               -DPUSHGATE_BENCH=$bench -DPUSHGATE_SANITIZE=$sanitize -DPUSHGATE_WERROR=$werror >"$dir.log" 2>&1; then
            echo "check-options: FAILED to configure $type tests=$tests bench=$bench sanitize=$sanitize werror=$werror:"
            tail -20 "$dir.log"
            failed=$((failed + 1))
          fi
          rm -rf "$dir" "$dir.log"
        done
      done
    done
  done
done
echo "check-options: $((n - failed)) of $n option combinations configure"
exit $((failed > 0))
