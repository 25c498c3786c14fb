#!/usr/bin/env bash
# Runs a whole trading system on this machine and shows it trade (README.md "Try it"):
# PostgreSQL and RabbitMQ (installed and started when missing, scripts/services.sh), the solver
# database and two worker shards (routing keys 0.# and 1.#, one database and one queue each),
# `configure`, both `worker`s, the simulator (`swpt-trade simulate`: an accounting authority,
# a Creditors Agent and the currencies' debtor info documents, with an audit of every turn),
# and, once every currency can be traded, the `solver`. The simulator prints one line per turn.
# Ctrl-C stops everything; running it again reuses the databases (--fresh drops them first).
#
# Settings come from `.env` when it exists (see `.env.example`); the ones this script needs
# for a local system (databases, queues, turn timing, APP_VERIFY_SSL_CERTS=false) are set here.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
Usage: scripts/run-local.sh [-n CREDITORS] [-m CURRENCIES] [-t TURN_SECONDS] [--fresh]

  -n, --creditors N      simulated creditors (default 100)
  -m, --currencies M     simulated currencies, the base included (default 5)
  -t, --turn-seconds S   the turn period in seconds, at least 30 (default 60)
      --fresh            drop the local databases first
EOF
}

creditors=100
currencies=5
turn=60
fresh=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--creditors) creditors="${2:-}"; shift 2 ;;
    -m|--currencies) currencies="${2:-}"; shift 2 ;;
    -t|--turn-seconds) turn="${2:-}"; shift 2 ;;
    --fresh) fresh=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-local.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
for pair in "creditors:$creditors:2" "currencies:$currencies:2" "turn-seconds:$turn:30"; do
  IFS=: read -r name value least <<<"$pair"
  if ! [[ "$value" =~ ^[0-9]+$ ]] || [ "$value" -lt "$least" ]; then
    echo "run-local.sh: --$name must be a whole number of at least $least, not \"$value\"" >&2
    exit 2
  fi
done

scripts/services.sh

if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi

pg="postgresql://postgres@127.0.0.1:5432"
solver_db=swpt_solver
worker_dbs=(swpt_worker_0 swpt_worker_1)
routing_keys=("0.#" "1.#")
for db in "$solver_db" "${worker_dbs[@]}"; do
  if [ -n "$fresh" ]; then
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  fi
  if ! psql "$pg/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql "$pg/postgres" -qc "CREATE DATABASE $db"
  fi
done

cargo build --release --locked --bin swpt-trade
bin=target/release/swpt-trade
logs=target/run-local
mkdir -p "$logs"
rm -f "$logs/ready"

# The system's settings. A turn of T seconds: phase 1 takes T/6, phase 2 T/3; workers look at
# their turns every T/60 seconds, well inside the offers' window before phase 2 ends (a tenth
# of the turn so far, docs/turns.md#worker-sub-phases); transfers are rolled every second.
https_port=18443
web_port="${WEBSERVER_PORT:-8080}"
base_debtor_id=1000
export SOLVER_POSTGRES_URL="$pg/$solver_db"
export PROTOCOL_BROKER_URL="${PROTOCOL_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672}"
export APP_LOG_LEVEL="${APP_LOG_LEVEL:-warning}"
export BASE_DEBTOR_ID=$base_debtor_id
export BASE_DEBTOR_INFO_LOCATOR="https://127.0.0.1:$https_port/currencies/$base_debtor_id"
export TURN_PERIOD="${turn}s"
export TURN_PERIOD_OFFSET=0s
export TURN_CHECK_INTERVAL=1s
export TURN_PHASE1_DURATION="$((turn / 6))s"
export TURN_PHASE2_DURATION="$((turn / 3))s"
APP_ROLL_WORKER_TURNS_WAIT=$(awk "BEGIN { print $turn / 60 }")
export APP_ROLL_WORKER_TURNS_WAIT
export APP_VERIFY_SSL_CERTS=false
export TRANSFERS_HEALTHY_MAX_COMMIT_DELAY=12s
export FLUSH_PERIOD=0.5
export HTTP_FETCH_PERIOD=1
export TRIGGER_TRANSFERS_PERIOD=1
export HANDLE_PRISTINE_COLLECTORS_PERIOD=1

for i in 0 1; do
  WORKER_POSTGRES_URL="$pg/${worker_dbs[$i]}" PROTOCOL_BROKER_QUEUE="swpt_trade_$i" \
    PROTOCOL_BROKER_QUEUE_ROUTING_KEY="${routing_keys[$i]}" SETUP_RABBITMQ_BINDINGS=yes \
    "$bin" configure
done

pids=()
names=()
start() { # name, log file, command...
  local name=$1 log=$2
  shift 2
  "$@" >>"$log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}

stop_all() {
  trap - INT TERM
  echo
  echo "Stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "Stopped. Logs: $logs/"
}
trap 'stop_all; exit 0' INT TERM

for i in 0 1; do
  start "worker $i" "$logs/worker-$i.log" env WORKER_POSTGRES_URL="$pg/${worker_dbs[$i]}" \
    PROTOCOL_BROKER_QUEUE="swpt_trade_$i" PROTOCOL_BROKER_QUEUE_ROUTING_KEY="${routing_keys[$i]}" \
    "$bin" worker
done

echo "Starting the simulator: $creditors creditors, $currencies currencies, a turn every ${turn}s."
"$bin" simulate --creditors "$creditors" --currencies "$currencies" --https-port "$https_port" \
  --base-debtor-id "$base_debtor_id" --ready-file "$logs/ready" \
  --transfers-timeout-seconds "$((turn * 3))" \
  --worker-db "$pg/${worker_dbs[0]}" --worker-db "$pg/${worker_dbs[1]}" \
  > >(tee -a "$logs/simulator.log") 2>&1 &
pids+=("$!")
names+=("simulator")

# The solver starts when every currency has an active collector and a confirmed document,
# so that its first turn trades.
for _ in $(seq 1 600); do
  [ -f "$logs/ready" ] && break
  for k in "${!pids[@]}"; do
    if ! kill -0 "${pids[$k]}" 2>/dev/null; then
      echo "run-local.sh: the ${names[$k]} stopped before the system was ready; see $logs/" >&2
      stop_all
      exit 1
    fi
  done
  sleep 0.5
done
if [ ! -f "$logs/ready" ]; then
  echo "run-local.sh: the system did not get ready in 5 minutes; see $logs/" >&2
  stop_all
  exit 1
fi
start "solver" "$logs/solver.log" "$bin" solver

# The admin API, on this machine only: no token server here, so it trusts the caller named in
# X-Swpt-User-Id (a request without one is a superuser's) — never do this on a reachable port.
start "webserver" "$logs/webserver.log" env APP_WEBSERVER_LISTEN_ADDRESS=127.0.0.1 \
  WEBSERVER_PORT="$web_port" APP_TRUST_USER_ID_HEADER=true "$bin" webserver

cat <<EOF
Running: solver, worker 0 (0.#), worker 1 (1.#), simulator, webserver. Ctrl-C stops everything.
Where to look:
  http://127.0.0.1:$web_port/trade/.docs/swagger-ui/    (Swagger UI of the admin API)
  curl http://127.0.0.1:$web_port/trade/turns           (every turn's figures)
  curl http://127.0.0.1:$web_port/metrics               (the webserver's metrics)
  $logs/{solver,worker-0,worker-1,simulator,webserver}.log    (APP_LOG_LEVEL=$APP_LOG_LEVEL)
  psql $SOLVER_POSTGRES_URL -c 'SELECT * FROM turn ORDER BY turn_id DESC LIMIT 5'
  psql $pg/${worker_dbs[0]} -c 'SELECT * FROM account_lock LIMIT 10'
  http://127.0.0.1:15672 (RabbitMQ, guest/guest): queues swpt_trade_0, swpt_trade_1, swpt_trade_simulator
A line per turn follows (the first turn starts within ${turn}s):
EOF

# Runs until Ctrl-C, or until a process stops (then everything is stopped).
set +e
wait -n "${pids[@]}"
status=$?
set -e
for k in "${!pids[@]}"; do
  if ! kill -0 "${pids[$k]}" 2>/dev/null; then
    echo "run-local.sh: the ${names[$k]} stopped (status $status); see $logs/" >&2
  fi
done
stop_all
exit 1
