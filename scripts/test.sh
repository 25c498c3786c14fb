#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and RabbitMQ servers, starting (or
# installing) them first. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --locked "$@"
