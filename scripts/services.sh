#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ run on this machine, installing them from Debian's
# packages when they are missing: PostgreSQL on 127.0.0.1:5432 accepting the `postgres` user
# without a password from loopback, RabbitMQ on 127.0.0.1:5672 (guest/guest) with the
# random-exchange and management plugins. Safe to run again; meant for development and CI
# machines, never for production servers.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=""

apt_install() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=yes
  fi
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_ready() {
  psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "Installing PostgreSQL..."
    apt_install postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # Exit status 2 means the cluster runs already.
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  if ! pg_ready; then
    # A fresh Debian cluster asks loopback clients for a password: trust them instead.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '^# swpt-trade development' "$hba"; then
      echo "Letting loopback clients connect to PostgreSQL without a password ($hba)..."
      $SUDO sed -i "1i # swpt-trade development: trust loopback clients\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust" "$hba"
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  fi
  if ! pg_ready; then
    echo "PostgreSQL does not accept connections on 127.0.0.1:5432" >&2
    return 1
  fi
  # The test suite runs whole systems (a solver, two workers, each with its pools) beside
  # other tests: Debian's 100 connections are not enough.
  local max
  max=$(psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SHOW max_connections')
  if [ "$max" -lt 300 ]; then
    echo "Raising PostgreSQL's max_connections from $max to 300 (restarts the cluster)..."
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'ALTER SYSTEM SET max_connections = 300'
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main restart
    for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
    echo "PostgreSQL did not come back after the restart" >&2
    return 1
  fi
}

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "Installing RabbitMQ..."
    apt_install rabbitmq-server
  fi
  if ! $SUDO rabbitmqctl -q status >/dev/null 2>&1; then
    echo "Starting RabbitMQ..."
    $SUDO rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 60); do
    $SUDO rabbitmqctl -q await_startup >/dev/null 2>&1 && break
    sleep 2
  done
  $SUDO rabbitmq-plugins -q enable rabbitmq_random_exchange rabbitmq_management >/dev/null
  for _ in $(seq 1 60); do
    if curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  echo "The RabbitMQ management API does not answer on 127.0.0.1:15672" >&2
  return 1
}

ensure_tools() {
  command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo was not found: install Rust 1.88 or newer (https://rustup.rs) first." >&2
    return 1
  fi
}

ensure_tools
ensure_postgres
ensure_rabbitmq
echo "PostgreSQL and RabbitMQ are running."
