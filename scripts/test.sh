#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and RabbitMQ servers, starting (or
# installing) them first. Extra arguments go to `cargo test`. Ends with one summary line of
# all the test binaries together.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "Summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
