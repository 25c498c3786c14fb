#!/usr/bin/env bash
#
# Compare our diesel migration schemas (migrations/{solver,worker}/*/up.sql)
# with the head schema produced by the reference Python project's real Alembic
# migrations (epandurski/swpt_trade).
#
# Usage:
#   scripts/compare-schema-with-reference.sh <reference-git-dir> [<commit>]
#
#   <reference-git-dir>  a local (bare) git snapshot of epandurski/swpt_trade,
#                        e.g. /work/.mirror/epandurski+swpt_trade/repo
#   <commit>             defaults to 256eb83545349a9c5ecf27f29a8b8471b8871945
#
# Environment (optional):
#   PGHOST (127.0.0.1) PGPORT (5432) PGUSER (postgres)  -- needs CREATEDB rights
#   SCHEMACMP_VENV  Python venv to create/use (/tmp/swpt-schemacmp-venv);
#                   alembic, SQLAlchemy and psycopg are pip-installed into it.
#   KEEP_DUMPS=1    keep the temporary work dir with the dumps and diffs.
#
# For each database (solver, worker) it:
#   1. creates scratch DB schemacmp_ref_<db>_<pid> and runs the reference
#      revisions (upgrade_solver() / upgrade_()) up to head with Alembic;
#   2. creates scratch DB schemacmp_our_<db>_<pid> and runs our up.sql;
#   3. diffs `pg_dump --schema-only --no-owner --no-privileges --no-comments`
#      of both, and the alembic_version rows;
#   4. runs our down.sql and checks that nothing is left behind, then runs
#      up.sql once more (up -> down -> up must work);
#   5. points the reference's Alembic at our database: `current` must report
#      head, `upgrade head` must be a no-op and `downgrade base` must succeed.
# Exit status is 0 only if every diff is empty and every check passed.
# Not used by the test suite; nothing is fetched except via pip.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi

REF_GIT_DIR=$1
REF_COMMIT=${2:-256eb83545349a9c5ecf27f29a8b8471b8871945}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
export PGHOST=${PGHOST:-127.0.0.1}
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-postgres}
VENV=${SCHEMACMP_VENV:-/tmp/swpt-schemacmp-venv}
# Versions pinned in the reference's poetry.lock.
PIP_PKGS=("alembic==1.16.4" "sqlalchemy==2.0.42" "psycopg[binary]==3.2.9")

WORK=$(mktemp -d /tmp/swpt-schemacmp.XXXXXX)
CREATED_DBS=()

cleanup() {
    for db in "${CREATED_DBS[@]}"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done
    if [[ "${KEEP_DUMPS:-}" == 1 ]]; then
        echo "dumps kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

new_db() {
    local db=$1
    CREATED_DBS+=("$db")
    psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1
    psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\" TEMPLATE template0" >/dev/null
}

dump_schema() {
    # The "\restrict <random key>" lines (newer pg_dump releases) differ on
    # every run, so they are removed; everything else is compared verbatim.
    pg_dump --schema-only --no-owner --no-privileges --no-comments -d "$1" \
        | grep -v -E '^\\(un)?restrict ' > "$2"
}

# --- Python environment with Alembic -------------------------------------
if [[ ! -x "$VENV/bin/alembic" ]]; then
    echo "creating venv $VENV ..."
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "${PIP_PKGS[@]}"
fi

# --- Reference migrations (from the local git snapshot, into $WORK) -------
mkdir -p "$WORK/ref"
git --git-dir="$REF_GIT_DIR" archive "$REF_COMMIT" migrations/versions \
    | tar -x -C "$WORK/ref"
cp "$SCRIPT_DIR/schemacmp/env.py" "$WORK/ref/migrations/env.py"
cat > "$WORK/alembic.ini" <<INI
[alembic]
script_location = $WORK/ref/migrations
INI
REF_HEAD=$("$VENV/bin/alembic" -c "$WORK/alembic.ini" heads | awk '{print $1}')
echo "reference $REF_COMMIT, alembic head: $REF_HEAD"

STATUS=0
for kind in solver worker; do
    echo "=== $kind database"
    mig_dirs=("$REPO_DIR"/migrations/"$kind"/*/)
    if [[ ${#mig_dirs[@]} -ne 1 ]]; then
        echo "expected exactly one migration dir under migrations/$kind" >&2
        exit 1
    fi
    up_sql=${mig_dirs[0]}up.sql
    down_sql=${mig_dirs[0]}down.sql

    ref_db=schemacmp_ref_${kind}_$$
    our_db=schemacmp_our_${kind}_$$
    new_db "$ref_db"
    new_db "$our_db"

    "$VENV/bin/alembic" -c "$WORK/alembic.ini" \
        -x "url=postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/$ref_db" \
        -x "engine=$kind" upgrade head 2> "$WORK/alembic_$kind.log" \
        || { cat "$WORK/alembic_$kind.log" >&2; exit 1; }
    psql -X -q -d "$our_db" -v ON_ERROR_STOP=1 --single-transaction -f "$up_sql" >/dev/null

    dump_schema "$ref_db" "$WORK/ref_$kind.sql"
    dump_schema "$our_db" "$WORK/our_$kind.sql"
    if diff -u --label "reference/$kind" --label "ours/$kind" \
            "$WORK/ref_$kind.sql" "$WORK/our_$kind.sql" > "$WORK/$kind.diff"; then
        echo "schema diff: empty ($(grep -c '^CREATE TABLE' "$WORK/ref_$kind.sql") tables)"
    else
        echo "schema diff: NOT EMPTY"
        cat "$WORK/$kind.diff"
        STATUS=1
    fi

    q="SELECT string_agg(version_num, ',') FROM alembic_version"
    ref_ver=$(psql -X -At -d "$ref_db" -c "$q")
    our_ver=$(psql -X -At -d "$our_db" -c "$q")
    if [[ "$ref_ver" == "$our_ver" ]]; then
        echo "alembic_version: $our_ver (same)"
    else
        echo "alembic_version: reference=$ref_ver ours=$our_ver  MISMATCH"
        STATUS=1
    fi

    # down.sql must remove everything up.sql created; up.sql must then work again.
    if ! psql -X -q -d "$our_db" -v ON_ERROR_STOP=1 --single-transaction -f "$down_sql" >/dev/null; then
        echo "down.sql: FAILED"
        STATUS=1
    fi
    left=$(psql -X -At -d "$our_db" -c "
        SELECT string_agg(c.relname, ' ')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%'")
    if [[ -z "$left" ]]; then
        echo "down.sql: leaves nothing behind"
    else
        echo "down.sql: left behind: $left"
        STATUS=1
    fi
    if psql -X -q -d "$our_db" -v ON_ERROR_STOP=1 --single-transaction -f "$up_sql" >/dev/null; then
        echo "up.sql after down.sql: ok"
    else
        echo "up.sql after down.sql: FAILED"
        STATUS=1
    fi

    # Interchangeability: the reference's own Alembic revisions must see our
    # database at head, and must be able to downgrade it all the way to base.
    alembic_our() {
        "$VENV/bin/alembic" -c "$WORK/alembic.ini" \
            -x "url=postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/$our_db" \
            -x "engine=$kind" "$@" 2>> "$WORK/alembic_$kind.log"
    }
    current=$(alembic_our current || true)
    if [[ "$current" == "$REF_HEAD (head)" ]] \
            && alembic_our upgrade head && alembic_our downgrade base; then
        left=$(psql -X -At -d "$our_db" -c "
            SELECT string_agg(c.relname, ' ' ORDER BY c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg_toast%'")
        if [[ "$left" == "alembic_version alembic_version_pkc" ]]; then
            echo "reference alembic on our DB: current=head, upgrade no-op, downgrade to base ok"
        else
            echo "reference alembic downgrade to base left behind: $left"
            STATUS=1
        fi
    else
        echo "reference alembic on our DB: FAILED (current='$current'; see below)"
        cat "$WORK/alembic_$kind.log"
        STATUS=1
    fi
done

if [[ $STATUS -eq 0 ]]; then
    echo "RESULT: schemas identical to reference head"
else
    echo "RESULT: differences found"
fi
exit $STATUS
