-- Drops everything created by up.sql, in reverse order. Indexes and the
-- BIGSERIAL sequences (owned by their signal_id columns) go away with their
-- tables; coordinator_request_id_seq is dropped last, after account_lock,
-- whose default depends on it.
DROP TABLE alembic_version;
DROP TABLE transfer_attempt;
DROP TABLE worker_dispatching;
DROP TABLE worker_receiving;
DROP TABLE worker_sending;
DROP TABLE worker_collecting;
DROP TABLE dispatching_status;
DROP TABLE creditor_participation;
DROP TABLE account_lock;
DROP TABLE active_collector;
DROP TABLE recently_needed_collector;
DROP TABLE worker_turn;
DROP TABLE debtor_info_fetch;
DROP TABLE debtor_locator_claim;
DROP TABLE debtor_info_document;
DROP TABLE trading_policy;
DROP TABLE interest_rate_change;
DROP TABLE worker_account;
DROP TABLE needed_worker_account;
DROP TABLE start_dispatching_signal;
DROP TABLE start_sending_signal;
DROP TABLE account_id_response_signal;
DROP TABLE account_id_request_signal;
DROP TABLE trigger_transfer_signal;
DROP TABLE revise_account_lock_signal;
DROP TABLE needed_collector_signal;
DROP TABLE candidate_offer_signal;
DROP TABLE activate_collector_signal;
DROP TABLE confirm_debtor_signal;
DROP TABLE discover_debtor_signal;
DROP TABLE store_document_signal;
DROP TABLE fetch_debtor_info_signal;
DROP TABLE finalize_transfer_signal;
DROP TABLE prepare_transfer_signal;
DROP TABLE configure_account_signal;
DROP SEQUENCE coordinator_request_id_seq;
