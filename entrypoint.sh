#!/bin/sh
# The container's entrypoint: the reference's contract (docs/operations.md#docker-image). The
# documented commands run the swpt-trade binary; anything else is executed verbatim (e.g. `sh`,
# `psql`). Every role is the binary alone, `webserver` included: it checks tokens itself, so
# there is no Oathkeeper configuration to generate and no supervisord to start.
set -e

# Development: replace "localhost" (after "//" or "@") by the Docker host's address in each
# variable named in $SUBSTITUTE_LOCALHOST_IN_VARS.
if [ -n "$SUBSTITUTE_LOCALHOST_IN_VARS" ]; then
    host_ip=$(ip route show | awk '/default/ {print $3}')
    for envvar_name in $SUBSTITUTE_LOCALHOST_IN_VARS; do
        eval envvar_value=\$$envvar_name
        if [ -n "$envvar_value" ]; then
            new_value=$(echo "$envvar_value" | sed -E "s/(.*@|.*\/\/)localhost\b/\1$host_ip/")
            export "$envvar_name=$new_value"
        fi
    done
fi

case "$1" in
    configure)
        # `configure` retries an unreachable database itself (1, 2, 4, 8, 16 s), then declares
        # the RabbitMQ objects when SETUP_RABBITMQ_BINDINGS=yes.
        if [ -n "$2" ]; then
            exec swpt-trade configure "$2"
        fi
        exec swpt-trade configure
        ;;
    solver | worker | webserver | await_migrations | consume_messages \
        | flush_all | flush_configure_accounts | flush_prepare_transfers \
        | flush_finalize_transfers | flush_fetch_debtor_infos | flush_store_documents \
        | flush_discover_debtors | flush_confirm_debtors | flush_activate_collectors \
        | flush_candidate_offers | flush_needed_collectors | flush_revise_account_locks \
        | flush_trigger_transfers | flush_account_id_requests | flush_account_id_responses \
        | fetch_debtor_infos | trigger_transfers | subscribe | unsubscribe | delete_queue \
        | verify_shard_content | solve_offline | roll_turns | roll_worker_turns \
        | roll_transfers | handle_pristine_collectors | scan_all \
        | scan_debtor_info_documents | scan_debtor_locator_claims | scan_trading_policies \
        | scan_worker_accounts | scan_interest_rate_changes | scan_needed_worker_accounts \
        | scan_recently_needed_collectors | scan_account_locks | scan_creditor_participations \
        | scan_dispatching_statuses | scan_worker_collectings | scan_worker_sendings \
        | scan_worker_receivings | scan_worker_dispatchings | scan_transfer_attempts)
        exec swpt-trade "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
