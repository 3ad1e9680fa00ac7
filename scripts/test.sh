#!/usr/bin/env bash
# The whole test suite: installs the test dependencies, then `cargo test --locked` (unit tests,
# the integration/e2e binary, doc tests). Extra arguments go to cargo test.
# The e2e tests create network namespaces: run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

if [ "$(id -u)" != 0 ]; then
  echo "test.sh: not root: the end-to-end tests (network namespaces) will fail" >&2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One summary over every test binary cargo ran.
awk '
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed;?$/)  passed  += $(i-1)
      if ($(i) ~ /^failed;?$/)  failed  += $(i-1)
      if ($(i) ~ /^ignored;?$/) ignored += $(i-1)
    }
    runs++
  }
  END {
    printf "\nsummary over %d test binaries:\n", runs
    if (ignored > 0) printf "%d passed, %d failed, %d skipped\n", passed, failed, ignored
    else printf "%d passed, %d failed\n", passed, failed
  }' "$log"
exit "$status"
