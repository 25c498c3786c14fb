-- Worker database: the complete schema of the reference (swpt_trade) at its
-- Alembic head 88cd664f51a3, i.e. the net result of all 11 reference revisions
-- (fa9f1737672b .. 88cd664f51a3) applied to an empty database.
--
-- Equivalence rules followed here (verified by
-- scripts/compare-schema-with-reference.sh, which diffs pg_dump output):
--   * table/column names, column order, types and nullability are identical.
--     Where a reference revision added columns to an existing table, those
--     columns come last here too (prepare_transfer_signal, account_lock,
--     trading_policy, debtor_info_fetch, fetch_debtor_info_signal);
--   * constraint names are spelled out, and are exactly the names PostgreSQL
--     auto-assigned when the reference created its unnamed constraints;
--   * the only server-side defaults are the BIGSERIAL signal_id columns and
--     account_lock.coordinator_request_id; everything else is supplied by the
--     application;
--   * no foreign keys (the reference's only one, account_lock -> worker_turn,
--     was dropped by revision dcb810823e04);
--   * the reference's table/column COMMENTs are not reproduced (docs only).
--   * "character varying" has no length limit, FLOAT = double precision.


-- The single source of coordinator request IDs (account_lock and
-- transfer_attempt). A plain bigint sequence, not owned by any column.
CREATE SEQUENCE coordinator_request_id_seq;


---------------------------------------------------------------------------
-- Outbox ("signal") tables: rows are messages waiting to be published.
---------------------------------------------------------------------------

CREATE TABLE configure_account_signal (
    creditor_id       BIGINT                   NOT NULL,
    debtor_id         BIGINT                   NOT NULL,
    ts                TIMESTAMP WITH TIME ZONE NOT NULL,
    seqnum            INTEGER                  NOT NULL,
    negligible_amount REAL                     NOT NULL,
    config_data       VARCHAR                  NOT NULL,
    config_flags      INTEGER                  NOT NULL,
    inserted_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT configure_account_signal_pkey
        PRIMARY KEY (creditor_id, debtor_id, ts, seqnum)
);

-- The last three columns replaced locked_amount/min_interest_rate in the
-- reference (revision 5aafeb2c295f), hence their position.
CREATE TABLE prepare_transfer_signal (
    creditor_id            BIGINT                   NOT NULL,
    coordinator_request_id BIGINT                   NOT NULL,
    debtor_id              BIGINT                   NOT NULL,
    recipient              VARCHAR                  NOT NULL,
    max_commit_delay       INTEGER                  NOT NULL,
    inserted_at            TIMESTAMP WITH TIME ZONE NOT NULL,
    min_locked_amount      BIGINT                   NOT NULL,
    max_locked_amount      BIGINT                   NOT NULL,
    final_interest_rate_ts TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT prepare_transfer_signal_pkey
        PRIMARY KEY (creditor_id, coordinator_request_id)
);

-- signal_id is a BIGSERIAL even though the primary key is composite.
CREATE TABLE finalize_transfer_signal (
    creditor_id            BIGINT                   NOT NULL,
    signal_id              BIGSERIAL                NOT NULL,
    debtor_id              BIGINT                   NOT NULL,
    transfer_id            BIGINT                   NOT NULL,
    coordinator_id         BIGINT                   NOT NULL,
    coordinator_request_id BIGINT                   NOT NULL,
    committed_amount       BIGINT                   NOT NULL,
    transfer_note_format   VARCHAR                  NOT NULL,
    transfer_note          VARCHAR                  NOT NULL,
    inserted_at            TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT finalize_transfer_signal_pkey PRIMARY KEY (creditor_id, signal_id)
);

-- forced_iri replaced ignore_cache in the reference (revision 88cd664f51a3).
CREATE TABLE fetch_debtor_info_signal (
    signal_id          BIGSERIAL                NOT NULL,
    iri                VARCHAR                  NOT NULL,
    debtor_id          BIGINT                   NOT NULL,
    is_locator_fetch   BOOLEAN                  NOT NULL,
    is_discovery_fetch BOOLEAN                  NOT NULL,
    recursion_level    SMALLINT                 NOT NULL,
    inserted_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    forced_iri         VARCHAR,
    CONSTRAINT fetch_debtor_info_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE store_document_signal (
    signal_id               BIGSERIAL                NOT NULL,
    debtor_info_locator     VARCHAR                  NOT NULL,
    debtor_id               BIGINT                   NOT NULL,
    peg_debtor_info_locator VARCHAR,
    peg_debtor_id           BIGINT,
    peg_exchange_rate       DOUBLE PRECISION,
    will_not_change_until   TIMESTAMP WITH TIME ZONE,
    inserted_at             TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT store_document_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE discover_debtor_signal (
    signal_id             BIGSERIAL                NOT NULL,
    debtor_id             BIGINT                   NOT NULL,
    force_locator_refetch BOOLEAN                  NOT NULL,
    iri                   VARCHAR                  NOT NULL,
    inserted_at           TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT discover_debtor_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE confirm_debtor_signal (
    signal_id           BIGSERIAL                NOT NULL,
    debtor_id           BIGINT                   NOT NULL,
    debtor_info_locator VARCHAR                  NOT NULL,
    inserted_at         TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT confirm_debtor_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE activate_collector_signal (
    signal_id   BIGSERIAL                NOT NULL,
    debtor_id   BIGINT                   NOT NULL,
    account_id  VARCHAR                  NOT NULL,
    creditor_id BIGINT                   NOT NULL,
    inserted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT activate_collector_signal_pkey PRIMARY KEY (signal_id)
);

-- NB: turn_id is SMALLINT here in the reference (everywhere else INTEGER).
-- Kept as is for schema equivalence.
CREATE TABLE candidate_offer_signal (
    turn_id               SMALLINT                 NOT NULL,
    debtor_id             BIGINT                   NOT NULL,
    creditor_id           BIGINT                   NOT NULL,
    amount                BIGINT                   NOT NULL,
    account_creation_date DATE                     NOT NULL,
    last_transfer_number  BIGINT                   NOT NULL,
    inserted_at           TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT candidate_offer_signal_pkey PRIMARY KEY (turn_id, debtor_id, creditor_id)
);

CREATE TABLE needed_collector_signal (
    signal_id   BIGSERIAL                NOT NULL,
    debtor_id   BIGINT                   NOT NULL,
    inserted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT needed_collector_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE revise_account_lock_signal (
    signal_id   BIGSERIAL                NOT NULL,
    creditor_id BIGINT                   NOT NULL,
    debtor_id   BIGINT                   NOT NULL,
    turn_id     INTEGER                  NOT NULL,
    inserted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT revise_account_lock_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE trigger_transfer_signal (
    signal_id      BIGSERIAL                NOT NULL,
    collector_id   BIGINT                   NOT NULL,
    turn_id        INTEGER                  NOT NULL,
    debtor_id      BIGINT                   NOT NULL,
    creditor_id    BIGINT                   NOT NULL,
    is_dispatching BOOLEAN                  NOT NULL,
    inserted_at    TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT trigger_transfer_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE account_id_request_signal (
    signal_id      BIGSERIAL                NOT NULL,
    collector_id   BIGINT                   NOT NULL,
    turn_id        INTEGER                  NOT NULL,
    debtor_id      BIGINT                   NOT NULL,
    creditor_id    BIGINT                   NOT NULL,
    is_dispatching BOOLEAN                  NOT NULL,
    inserted_at    TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT account_id_request_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE account_id_response_signal (
    signal_id          BIGSERIAL                NOT NULL,
    collector_id       BIGINT                   NOT NULL,
    turn_id            INTEGER                  NOT NULL,
    debtor_id          BIGINT                   NOT NULL,
    creditor_id        BIGINT                   NOT NULL,
    is_dispatching     BOOLEAN                  NOT NULL,
    account_id         VARCHAR                  NOT NULL,
    account_id_version BIGINT                   NOT NULL,
    inserted_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT account_id_response_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE start_sending_signal (
    signal_id    BIGSERIAL                NOT NULL,
    collector_id BIGINT                   NOT NULL,
    turn_id      INTEGER                  NOT NULL,
    debtor_id    BIGINT                   NOT NULL,
    inserted_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT start_sending_signal_pkey PRIMARY KEY (signal_id)
);

CREATE TABLE start_dispatching_signal (
    signal_id    BIGSERIAL                NOT NULL,
    collector_id BIGINT                   NOT NULL,
    turn_id      INTEGER                  NOT NULL,
    debtor_id    BIGINT                   NOT NULL,
    inserted_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT start_dispatching_signal_pkey PRIMARY KEY (signal_id)
);


---------------------------------------------------------------------------
-- Collector accounts managed by this worker.
---------------------------------------------------------------------------

-- Collector accounts for which this worker has sent ConfigureAccount.
CREATE TABLE needed_worker_account (
    creditor_id   BIGINT                   NOT NULL,
    debtor_id     BIGINT                   NOT NULL,
    configured_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT needed_worker_account_pkey PRIMARY KEY (creditor_id, debtor_id)
);

-- Latest known state of a collector account (from AccountUpdate messages).
CREATE TABLE worker_account (
    creditor_id                  BIGINT                   NOT NULL,
    debtor_id                    BIGINT                   NOT NULL,
    creation_date                DATE                     NOT NULL,
    last_change_ts               TIMESTAMP WITH TIME ZONE NOT NULL,
    last_change_seqnum           INTEGER                  NOT NULL,
    principal                    BIGINT                   NOT NULL,
    interest                     DOUBLE PRECISION         NOT NULL,
    interest_rate                REAL                     NOT NULL,
    last_interest_rate_change_ts TIMESTAMP WITH TIME ZONE NOT NULL,
    config_flags                 INTEGER                  NOT NULL,
    account_id                   VARCHAR                  NOT NULL,
    debtor_info_iri              VARCHAR,
    last_transfer_number         BIGINT                   NOT NULL,
    last_transfer_committed_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    demurrage_rate               DOUBLE PRECISION         NOT NULL,
    commit_period                INTEGER                  NOT NULL,
    transfer_note_max_bytes      INTEGER                  NOT NULL,
    last_heartbeat_ts            TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT worker_account_pkey PRIMARY KEY (creditor_id, debtor_id),
    CONSTRAINT worker_account_commit_period_check CHECK (commit_period >= 0),
    CONSTRAINT worker_account_demurrage_rate_check
        CHECK (demurrage_rate >= -100.0 AND demurrage_rate <= 0.0),
    CONSTRAINT worker_account_interest_rate_check CHECK (interest_rate >= -100.0),
    CONSTRAINT worker_account_last_transfer_number_check CHECK (last_transfer_number >= 0),
    CONSTRAINT worker_account_transfer_note_max_bytes_check
        CHECK (transfer_note_max_bytes >= 0)
);

-- Interest-rate history of collector accounts. Covering primary key
-- (INCLUDE interest_rate); the reference creates it as unique index
-- idx_interest_rate_change_pk + "ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
-- which renames the index to the constraint name -- the inline form below
-- produces identical catalog objects. (Same for the other INCLUDE keys.)
CREATE TABLE interest_rate_change (
    creditor_id   BIGINT                   NOT NULL,
    debtor_id     BIGINT                   NOT NULL,
    change_ts     TIMESTAMP WITH TIME ZONE NOT NULL,
    interest_rate REAL                     NOT NULL,
    CONSTRAINT interest_rate_change_pkey
        PRIMARY KEY (creditor_id, debtor_id, change_ts) INCLUDE (interest_rate),
    CONSTRAINT interest_rate_change_interest_rate_check CHECK (interest_rate >= -100.0)
);


---------------------------------------------------------------------------
-- Customer accounts and debtor (currency) information.
---------------------------------------------------------------------------

-- Trading policy of a customer account (from the Creditors Agent).
-- account_id_is_obsolete was added later in the reference (c442e0862585).
CREATE TABLE trading_policy (
    creditor_id             BIGINT                   NOT NULL,
    debtor_id               BIGINT                   NOT NULL,
    latest_ledger_update_id BIGINT                   NOT NULL,
    latest_ledger_update_ts TIMESTAMP WITH TIME ZONE NOT NULL,
    account_id              VARCHAR                  NOT NULL,
    creation_date           DATE                     NOT NULL,
    principal               BIGINT                   NOT NULL,
    last_transfer_number    BIGINT                   NOT NULL,
    latest_policy_update_id BIGINT                   NOT NULL,
    latest_policy_update_ts TIMESTAMP WITH TIME ZONE NOT NULL,
    policy_name             VARCHAR,
    min_principal           BIGINT                   NOT NULL,
    max_principal           BIGINT                   NOT NULL,
    peg_debtor_id           BIGINT,
    peg_exchange_rate       DOUBLE PRECISION,
    latest_flags_update_id  BIGINT                   NOT NULL,
    latest_flags_update_ts  TIMESTAMP WITH TIME ZONE NOT NULL,
    config_flags            INTEGER                  NOT NULL,
    account_id_is_obsolete  BOOLEAN                  NOT NULL,
    CONSTRAINT trading_policy_pkey PRIMARY KEY (creditor_id, debtor_id),
    CONSTRAINT trading_policy_check CHECK (
        peg_debtor_id IS NULL AND peg_exchange_rate IS NULL
        OR peg_debtor_id IS NOT NULL AND peg_exchange_rate IS NOT NULL),
    CONSTRAINT trading_policy_last_transfer_number_check CHECK (last_transfer_number >= 0),
    CONSTRAINT trading_policy_latest_flags_update_id_check CHECK (latest_flags_update_id >= 0),
    CONSTRAINT trading_policy_latest_ledger_update_id_check CHECK (latest_ledger_update_id >= 0),
    CONSTRAINT trading_policy_latest_policy_update_id_check CHECK (latest_policy_update_id >= 0),
    CONSTRAINT trading_policy_peg_exchange_rate_check CHECK (peg_exchange_rate >= 0.0)
);

-- Parsed debtor info documents, keyed by locator.
CREATE TABLE debtor_info_document (
    debtor_info_locator     VARCHAR                  NOT NULL,
    debtor_id               BIGINT                   NOT NULL,
    peg_debtor_info_locator VARCHAR,
    peg_debtor_id           BIGINT,
    peg_exchange_rate       DOUBLE PRECISION,
    will_not_change_until   TIMESTAMP WITH TIME ZONE,
    fetched_at              TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT debtor_info_document_pkey PRIMARY KEY (debtor_info_locator),
    CONSTRAINT debtor_info_document_check CHECK (
        peg_debtor_info_locator IS NULL AND peg_debtor_id IS NULL AND peg_exchange_rate IS NULL
        OR peg_debtor_info_locator IS NOT NULL AND peg_debtor_id IS NOT NULL
           AND peg_exchange_rate IS NOT NULL),
    CONSTRAINT debtor_info_document_peg_exchange_rate_check CHECK (peg_exchange_rate >= 0.0)
);

-- The debtor info locator a debtor claims as its official one.
CREATE TABLE debtor_locator_claim (
    debtor_id                 BIGINT                   NOT NULL,
    debtor_info_locator       VARCHAR,
    latest_locator_fetch_at   TIMESTAMP WITH TIME ZONE,
    latest_discovery_fetch_at TIMESTAMP WITH TIME ZONE NOT NULL,
    forced_locator_refetch_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT debtor_locator_claim_pkey PRIMARY KEY (debtor_id),
    CONSTRAINT debtor_locator_claim_check CHECK (
        debtor_info_locator IS NULL AND latest_locator_fetch_at IS NULL
        OR debtor_info_locator IS NOT NULL AND latest_locator_fetch_at IS NOT NULL)
);
CREATE INDEX idx_debtor_locator_claim_latest_locator_fetch_at
    ON debtor_locator_claim (latest_locator_fetch_at)
    WHERE latest_locator_fetch_at IS NOT NULL;

-- Scheduled debtor info document fetches.
-- forced_iri replaced ignore_cache in the reference (revision 88cd664f51a3).
CREATE TABLE debtor_info_fetch (
    iri                      VARCHAR                  NOT NULL,
    debtor_id                BIGINT                   NOT NULL,
    is_locator_fetch         BOOLEAN                  NOT NULL,
    is_discovery_fetch       BOOLEAN                  NOT NULL,
    recursion_level          SMALLINT                 NOT NULL,
    inserted_at              TIMESTAMP WITH TIME ZONE NOT NULL,
    attempts_count           SMALLINT                 NOT NULL,
    latest_attempt_at        TIMESTAMP WITH TIME ZONE,
    latest_attempt_errorcode SMALLINT,
    next_attempt_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    forced_iri               VARCHAR,
    CONSTRAINT debtor_info_fetch_pkey PRIMARY KEY (iri, debtor_id),
    CONSTRAINT debtor_info_fetch_check CHECK (
        attempts_count = 0 AND latest_attempt_at IS NULL AND latest_attempt_errorcode IS NULL
        OR attempts_count > 0 AND latest_attempt_at IS NOT NULL),
    CONSTRAINT debtor_info_fetch_recursion_level_check CHECK (recursion_level >= 0)
);
CREATE INDEX idx_debtor_info_fetch_next_attempt_at ON debtor_info_fetch (next_attempt_at);


---------------------------------------------------------------------------
-- Trading turns, as seen by the worker.
---------------------------------------------------------------------------

-- Local copy of the solver's turn table (turn_id comes from there, so no
-- sequence), plus the worker's own sub-phase.
CREATE TABLE worker_turn (
    turn_id                  INTEGER                  NOT NULL,
    started_at               TIMESTAMP WITH TIME ZONE NOT NULL,
    base_debtor_info_locator VARCHAR                  NOT NULL,
    base_debtor_id           BIGINT                   NOT NULL,
    max_distance_to_base     SMALLINT                 NOT NULL,
    min_trade_amount         BIGINT                   NOT NULL,
    phase                    SMALLINT                 NOT NULL,
    phase_deadline           TIMESTAMP WITH TIME ZONE,
    collection_started_at    TIMESTAMP WITH TIME ZONE,
    collection_deadline      TIMESTAMP WITH TIME ZONE,
    worker_turn_subphase     SMALLINT                 NOT NULL,
    CONSTRAINT worker_turn_pkey PRIMARY KEY (turn_id),
    CONSTRAINT worker_turn_base_debtor_id_check CHECK (base_debtor_id != 0),
    CONSTRAINT worker_turn_max_distance_to_base_check CHECK (max_distance_to_base > 0),
    CONSTRAINT worker_turn_min_trade_amount_check CHECK (min_trade_amount > 0),
    CONSTRAINT worker_turn_phase_check CHECK (phase > 0 AND phase <= 3),
    CONSTRAINT worker_turn_check CHECK (phase < 2 OR collection_deadline IS NOT NULL),
    CONSTRAINT worker_turn_check1 CHECK (phase < 3 OR collection_started_at IS NOT NULL),
    CONSTRAINT worker_turn_check2 CHECK (phase > 2 OR phase_deadline IS NOT NULL),
    CONSTRAINT worker_turn_worker_turn_subphase_check
        CHECK (worker_turn_subphase >= 0 AND worker_turn_subphase <= 10)
);
CREATE INDEX idx_worker_turn_subphase
    ON worker_turn (worker_turn_subphase) WHERE worker_turn_subphase < 10;
CREATE INDEX idx_worker_turn_phase ON worker_turn (phase) WHERE phase < 3;

-- De-duplicates NeededCollector handling.
CREATE TABLE recently_needed_collector (
    debtor_id BIGINT                   NOT NULL,
    needed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT recently_needed_collector_pkey PRIMARY KEY (debtor_id),
    CONSTRAINT recently_needed_collector_debtor_id_check CHECK (debtor_id != 0)
);

-- Local copy of the active collector accounts (from the solver's
-- collector_account table).
CREATE TABLE active_collector (
    debtor_id    BIGINT  NOT NULL,
    collector_id BIGINT  NOT NULL,
    account_id   VARCHAR NOT NULL,
    CONSTRAINT active_collector_pkey PRIMARY KEY (debtor_id, collector_id),
    CONSTRAINT active_collector_account_id_check CHECK (account_id != '')
);

-- A customer account's participation in a turn. No foreign key on turn_id
-- (the reference dropped it).
CREATE TABLE account_lock (
    creditor_id                  BIGINT                   NOT NULL,
    debtor_id                    BIGINT                   NOT NULL,
    turn_id                      INTEGER                  NOT NULL,
    collector_id                 BIGINT                   NOT NULL,
    initiated_at                 TIMESTAMP WITH TIME ZONE NOT NULL,
    coordinator_request_id       BIGINT                   NOT NULL
        DEFAULT nextval('coordinator_request_id_seq'),
    amount                       BIGINT                   NOT NULL,
    transfer_id                  BIGINT,
    finalized_at                 TIMESTAMP WITH TIME ZONE,
    released_at                  TIMESTAMP WITH TIME ZONE,
    account_creation_date        DATE,
    account_last_transfer_number BIGINT,
    has_been_revised             BOOLEAN                  NOT NULL,
    CONSTRAINT account_lock_pkey PRIMARY KEY (creditor_id, debtor_id),
    CONSTRAINT account_lock_check CHECK (finalized_at IS NULL OR transfer_id IS NOT NULL),
    CONSTRAINT account_lock_check1 CHECK (
        released_at IS NULL
        OR finalized_at IS NOT NULL AND account_creation_date IS NOT NULL
           AND account_last_transfer_number IS NOT NULL)
);
CREATE UNIQUE INDEX idx_lock_account_coordinator_request_id
    ON account_lock (coordinator_request_id);
CREATE INDEX idx_lock_account_turn_id ON account_lock (turn_id);

-- What the solver decided for a customer account in a turn: a negative
-- amount is taken from the creditor, a positive one is given to it.
CREATE TABLE creditor_participation (
    creditor_id  BIGINT  NOT NULL,
    debtor_id    BIGINT  NOT NULL,
    turn_id      INTEGER NOT NULL,
    amount       BIGINT  NOT NULL,
    collector_id BIGINT  NOT NULL,
    CONSTRAINT creditor_participation_pkey PRIMARY KEY (creditor_id, debtor_id, turn_id),
    CONSTRAINT creditor_participation_amount_check CHECK (amount < 0 OR amount > 1)
);

-- Progress of collecting/sending/receiving/dispatching for one collector
-- account, turn and debtor.
CREATE TABLE dispatching_status (
    collector_id           BIGINT                   NOT NULL,
    turn_id                INTEGER                  NOT NULL,
    debtor_id              BIGINT                   NOT NULL,
    inserted_at            TIMESTAMP WITH TIME ZONE NOT NULL,
    amount_to_collect      BIGINT                   NOT NULL,
    total_collected_amount BIGINT,
    amount_to_send         BIGINT                   NOT NULL,
    started_sending        BOOLEAN                  NOT NULL,
    all_sent               BOOLEAN                  NOT NULL,
    amount_to_receive      BIGINT                   NOT NULL,
    number_to_receive      INTEGER                  NOT NULL,
    total_received_amount  BIGINT,
    all_received           BOOLEAN                  NOT NULL,
    amount_to_dispatch     BIGINT                   NOT NULL,
    started_dispatching    BOOLEAN                  NOT NULL,
    awaiting_signal_flag   BOOLEAN                  NOT NULL,
    CONSTRAINT dispatching_status_pkey
        PRIMARY KEY (collector_id, turn_id, debtor_id)
        INCLUDE (started_sending, all_sent, started_dispatching, awaiting_signal_flag),
    CONSTRAINT dispatching_status_amount_to_collect_check CHECK (amount_to_collect >= 0),
    CONSTRAINT dispatching_status_amount_to_dispatch_check CHECK (amount_to_dispatch >= 0),
    CONSTRAINT dispatching_status_amount_to_receive_check CHECK (amount_to_receive >= 0),
    CONSTRAINT dispatching_status_amount_to_send_check CHECK (amount_to_send >= 0),
    CONSTRAINT dispatching_status_number_to_receive_check CHECK (number_to_receive >= 0),
    CONSTRAINT dispatching_status_total_collected_amount_check
        CHECK (total_collected_amount >= 0),
    CONSTRAINT dispatching_status_total_received_amount_check
        CHECK (total_received_amount >= 0),
    CONSTRAINT dispatching_status_check
        CHECK (started_sending = (total_collected_amount IS NOT NULL)),
    CONSTRAINT dispatching_status_check1 CHECK (all_sent = false OR started_sending = true),
    CONSTRAINT dispatching_status_check2
        CHECK (all_received = false OR total_received_amount IS NOT NULL),
    CONSTRAINT dispatching_status_check3
        CHECK (started_dispatching = (all_sent = true AND total_received_amount IS NOT NULL)),
    CONSTRAINT dispatching_status_check4 CHECK (amount_to_send <= amount_to_collect),
    CONSTRAINT dispatching_status_check5 CHECK (total_collected_amount <= amount_to_collect)
);


---------------------------------------------------------------------------
-- Per-turn transfer plans (copied from the solver during phase 3).
---------------------------------------------------------------------------

-- Amounts to be collected from customer accounts into a collector.
CREATE TABLE worker_collecting (
    collector_id BIGINT                   NOT NULL,
    turn_id      INTEGER                  NOT NULL,
    debtor_id    BIGINT                   NOT NULL,
    creditor_id  BIGINT                   NOT NULL,
    amount       BIGINT                   NOT NULL,
    collected    BOOLEAN                  NOT NULL,
    purge_after  TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT worker_collecting_pkey
        PRIMARY KEY (collector_id, turn_id, debtor_id, creditor_id) INCLUDE (amount),
    CONSTRAINT worker_collecting_amount_check CHECK (amount > 0),
    CONSTRAINT worker_collecting_check CHECK (collector_id != creditor_id)
);
CREATE INDEX idx_worker_collecting_not_collected
    ON worker_collecting (collector_id, turn_id, debtor_id, creditor_id)
    WHERE collected = false;

-- Amounts a collector must send to other collectors.
CREATE TABLE worker_sending (
    from_collector_id BIGINT                   NOT NULL,
    turn_id           INTEGER                  NOT NULL,
    debtor_id         BIGINT                   NOT NULL,
    to_collector_id   BIGINT                   NOT NULL,
    amount            BIGINT                   NOT NULL,
    purge_after       TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT worker_sending_pkey
        PRIMARY KEY (from_collector_id, turn_id, debtor_id, to_collector_id) INCLUDE (amount),
    CONSTRAINT worker_sending_amount_check CHECK (amount > 1),
    CONSTRAINT worker_sending_check CHECK (from_collector_id != to_collector_id)
);

-- Amounts a collector expects to receive from other collectors.
CREATE TABLE worker_receiving (
    to_collector_id   BIGINT                   NOT NULL,
    turn_id           INTEGER                  NOT NULL,
    debtor_id         BIGINT                   NOT NULL,
    from_collector_id BIGINT                   NOT NULL,
    expected_amount   BIGINT                   NOT NULL,
    received_amount   BIGINT                   NOT NULL,
    purge_after       TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT worker_receiving_pkey
        PRIMARY KEY (to_collector_id, turn_id, debtor_id, from_collector_id)
        INCLUDE (received_amount),
    CONSTRAINT worker_receiving_check CHECK (from_collector_id != to_collector_id),
    CONSTRAINT worker_receiving_expected_amount_check CHECK (expected_amount > 1),
    CONSTRAINT worker_receiving_received_amount_check CHECK (received_amount >= 0)
);
CREATE INDEX idx_worker_receiving_not_received
    ON worker_receiving (to_collector_id, turn_id, debtor_id, from_collector_id)
    WHERE received_amount = 0;

-- Amounts a collector must dispatch to customer accounts.
CREATE TABLE worker_dispatching (
    collector_id BIGINT                   NOT NULL,
    turn_id      INTEGER                  NOT NULL,
    debtor_id    BIGINT                   NOT NULL,
    creditor_id  BIGINT                   NOT NULL,
    amount       BIGINT                   NOT NULL,
    purge_after  TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT worker_dispatching_pkey
        PRIMARY KEY (collector_id, turn_id, debtor_id, creditor_id) INCLUDE (amount),
    CONSTRAINT worker_dispatching_amount_check CHECK (amount > 1),
    CONSTRAINT worker_dispatching_check CHECK (collector_id != creditor_id)
);

-- Transfers from a collector account (to another collector, or dispatching
-- to a customer account).
CREATE TABLE transfer_attempt (
    collector_id           BIGINT                   NOT NULL,
    turn_id                INTEGER                  NOT NULL,
    debtor_id              BIGINT                   NOT NULL,
    creditor_id            BIGINT                   NOT NULL,
    is_dispatching         BOOLEAN                  NOT NULL,
    nominal_amount         DOUBLE PRECISION         NOT NULL,
    collection_started_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    inserted_at            TIMESTAMP WITH TIME ZONE NOT NULL,
    recipient              VARCHAR                  NOT NULL,
    recipient_version      BIGINT                   NOT NULL,
    rescheduled_for        TIMESTAMP WITH TIME ZONE,
    attempted_at           TIMESTAMP WITH TIME ZONE,
    coordinator_request_id BIGINT,
    final_interest_rate_ts TIMESTAMP WITH TIME ZONE,
    amount                 BIGINT,
    transfer_id            BIGINT,
    finalized_at           TIMESTAMP WITH TIME ZONE,
    failure_code           SMALLINT,
    backoff_counter        SMALLINT                 NOT NULL,
    fatal_error            VARCHAR,
    CONSTRAINT transfer_attempt_pkey
        PRIMARY KEY (collector_id, turn_id, debtor_id, creditor_id, is_dispatching),
    CONSTRAINT transfer_attempt_amount_check CHECK (amount > 0),
    CONSTRAINT transfer_attempt_backoff_counter_check CHECK (backoff_counter >= 0),
    CONSTRAINT transfer_attempt_nominal_amount_check CHECK (nominal_amount >= 1.0),
    CONSTRAINT transfer_attempt_check CHECK (
        attempted_at IS NULL AND coordinator_request_id IS NULL
            AND final_interest_rate_ts IS NULL AND amount IS NULL
        OR attempted_at IS NOT NULL AND coordinator_request_id IS NOT NULL
            AND final_interest_rate_ts IS NOT NULL AND amount IS NOT NULL
            AND recipient != ''),
    CONSTRAINT transfer_attempt_check1 CHECK (failure_code IS NULL OR attempted_at IS NOT NULL),
    CONSTRAINT transfer_attempt_check2
        CHECK (fatal_error IS NULL OR failure_code = 0 AND rescheduled_for IS NULL),
    CONSTRAINT transfer_attempt_check3
        CHECK (rescheduled_for IS NULL OR attempted_at IS NULL OR failure_code IS NOT NULL),
    CONSTRAINT transfer_attempt_check4 CHECK (
        transfer_id IS NULL AND finalized_at IS NULL
        OR transfer_id IS NOT NULL AND finalized_at IS NOT NULL),
    CONSTRAINT transfer_attempt_check5 CHECK (transfer_id IS NULL OR attempted_at IS NOT NULL)
);
CREATE UNIQUE INDEX idx_transfer_coordinator_request_id
    ON transfer_attempt (coordinator_request_id)
    WHERE coordinator_request_id IS NOT NULL;
CREATE INDEX idx_transfer_rescheduled_for
    ON transfer_attempt (rescheduled_for)
    WHERE rescheduled_for IS NOT NULL;


-- Alembic bookkeeping, identical to what Alembic itself creates, so that the
-- reference's Python tooling sees this database as being at head.
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('88cd664f51a3');
