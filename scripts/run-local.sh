#!/usr/bin/env bash
# Sets up and runs the service on this machine: starts (or installs) PostgreSQL and RabbitMQ,
# creates the local databases `swpt_solver` and `swpt_worker`, runs `configure` (schemas and
# RabbitMQ objects), then starts a worker. Settings come from `.env` when it exists (see
# `.env.example`); the database and broker URLs default to the local servers.
# Usage: scripts/run-local.sh [COMMAND]   (default: worker)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi
export SOLVER_POSTGRES_URL="${SOLVER_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/swpt_solver}"
export WORKER_POSTGRES_URL="${WORKER_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/swpt_worker}"
export PROTOCOL_BROKER_URL="${PROTOCOL_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672}"
export APP_LOG_LEVEL="${APP_LOG_LEVEL:-info}"
export SETUP_RABBITMQ_BINDINGS="${SETUP_RABBITMQ_BINDINGS:-yes}"

for db in swpt_solver swpt_worker; do
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
  fi
done

cargo build --release --locked --bin swpt-trade
bin=target/release/swpt-trade
"$bin" configure
exec "$bin" "${1:-worker}"
