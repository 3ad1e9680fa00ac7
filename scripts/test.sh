#!/usr/bin/env bash
# The whole test suite: installs the test dependencies, checks formatting (`cargo fmt --check`)
# and lints (`cargo clippy --all-targets --locked -- -D warnings`), then `cargo test --locked`
# (unit tests, the integration/e2e binary, doc tests). Extra arguments go to cargo test.
# A formatting or lint failure fails the run, after the tests have run.
# The e2e tests create network namespaces: run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

if [ "$(id -u)" != 0 ]; then
  echo "test.sh: not root: the end-to-end tests (network namespaces) will fail" >&2
fi

lint=0
echo "test.sh: cargo fmt --all -- --check" >&2
cargo fmt --all -- --check || lint=1
echo "test.sh: cargo clippy --all-targets --locked -- -D warnings" >&2
cargo clippy --all-targets --locked -- -D warnings || lint=1

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
if [ "$lint" != 0 ]; then
  echo "test.sh: cargo fmt --check or cargo clippy failed (see above)" >&2
  [ "$status" != 0 ] || status=1
fi
exit "$status"
