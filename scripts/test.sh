#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and RabbitMQ servers, starting (or
# installing) them first. Extra arguments go to `cargo test`. Ends with one summary line of
# all the test binaries together.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# The Swagger UI check (tests/integration/web_docs.rs) drives Debian's headless Chromium.
if [ -z "${TEST_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Chromium for the browser check of Swagger UI..."
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "Summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
