-- Solver database: the complete schema of the reference (swpt_trade) at its
-- Alembic head 88cd664f51a3.  Only the first reference revision (fa9f1737672b)
-- touches the solver database; every later revision is a no-op for it.
--
-- Equivalence rules followed here (verified by
-- scripts/compare-schema-with-reference.sh, which diffs pg_dump output):
--   * table/column names, column order, types and nullability are identical;
--   * constraint names are spelled out, and are exactly the names PostgreSQL
--     auto-assigned when the reference created its unnamed constraints;
--   * the only server-side default is the SERIAL on turn.turn_id; all other
--     "defaults" are supplied by the application;
--   * the reference's table/column COMMENTs are not reproduced (docs only).
--   * "character varying" has no length limit, FLOAT = double precision.


-- A circular trading round. Created and advanced by the solver; workers
-- mirror it into their own worker_turn table.
CREATE TABLE turn (
    turn_id                  SERIAL                   NOT NULL,
    started_at               TIMESTAMP WITH TIME ZONE NOT NULL,
    base_debtor_info_locator VARCHAR                  NOT NULL,
    base_debtor_id           BIGINT                   NOT NULL,
    max_distance_to_base     SMALLINT                 NOT NULL,
    min_trade_amount         BIGINT                   NOT NULL,
    -- 1 = gathering currencies, 2 = gathering offers, 3 = giving/taking, 4 = done
    phase                    SMALLINT                 NOT NULL,
    phase_deadline           TIMESTAMP WITH TIME ZONE,
    collection_started_at    TIMESTAMP WITH TIME ZONE,
    collection_deadline      TIMESTAMP WITH TIME ZONE,
    CONSTRAINT turn_pkey PRIMARY KEY (turn_id),
    CONSTRAINT turn_base_debtor_id_check CHECK (base_debtor_id != 0),
    CONSTRAINT turn_max_distance_to_base_check CHECK (max_distance_to_base > 0),
    CONSTRAINT turn_min_trade_amount_check CHECK (min_trade_amount > 0),
    CONSTRAINT turn_phase_check CHECK (phase > 0 AND phase <= 4),
    CONSTRAINT turn_check CHECK (phase < 2 OR collection_deadline IS NOT NULL),
    CONSTRAINT turn_check1 CHECK (phase < 3 OR collection_started_at IS NOT NULL),
    CONSTRAINT turn_check2 CHECK (phase > 2 OR phase_deadline IS NOT NULL)
);
CREATE INDEX idx_turn_phase ON turn (phase) WHERE phase < 4;
CREATE INDEX idx_turn_started_at ON turn (started_at);


-- Collector accounts (planned, requested, active or disabled) for every
-- currency. status: 0 pristine, 1 creation requested, 2 active, 3 disabled.
-- The primary key is a covering one (INCLUDE status). The reference builds it
-- as a unique index idx_collector_account_pk and then attaches it with
-- "ADD CONSTRAINT ... PRIMARY KEY USING INDEX", which renames the index to the
-- constraint name; declaring it inline yields the very same catalog objects.
CREATE TABLE collector_account (
    debtor_id               BIGINT                   NOT NULL,
    collector_id            BIGINT                   NOT NULL,
    collector_hash          SMALLINT                 NOT NULL,
    account_id              VARCHAR                  NOT NULL,
    status                  SMALLINT                 NOT NULL,
    latest_status_change_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT collector_account_pkey
        PRIMARY KEY (debtor_id, collector_id) INCLUDE (status),
    CONSTRAINT collector_account_status_check CHECK (status >= 0 AND status <= 3)
);
CREATE INDEX idx_collector_account_creation_request
    ON collector_account (status) WHERE status = 0;


-- Phase 1 input, written by workers: currency descriptions per turn.
CREATE TABLE debtor_info (
    turn_id                 INTEGER  NOT NULL,
    debtor_info_locator     VARCHAR  NOT NULL,
    debtor_id               BIGINT   NOT NULL,
    peg_debtor_info_locator VARCHAR,
    peg_debtor_id           BIGINT,
    peg_exchange_rate       DOUBLE PRECISION,
    CONSTRAINT debtor_info_pkey PRIMARY KEY (turn_id, debtor_info_locator)
);


-- Phase 1 input, written by workers: debtors that confirmed a locator.
CREATE TABLE confirmed_debtor (
    turn_id             INTEGER NOT NULL,
    debtor_id           BIGINT  NOT NULL,
    debtor_info_locator VARCHAR NOT NULL,
    CONSTRAINT confirmed_debtor_pkey PRIMARY KEY (turn_id, debtor_id)
);


-- Phase 2 currency table, written by the solver, read by workers.
CREATE TABLE currency_info (
    turn_id                 INTEGER  NOT NULL,
    debtor_info_locator     VARCHAR  NOT NULL,
    debtor_id               BIGINT   NOT NULL,
    peg_debtor_info_locator VARCHAR,
    peg_debtor_id           BIGINT,
    peg_exchange_rate       DOUBLE PRECISION,
    is_confirmed            BOOLEAN  NOT NULL,
    CONSTRAINT currency_info_pkey PRIMARY KEY (turn_id, debtor_info_locator)
);
CREATE UNIQUE INDEX idx_currency_info_confirmed_debtor_id
    ON currency_info (turn_id, debtor_id) WHERE is_confirmed;


-- Phase 2 offers, written by workers.
CREATE TABLE sell_offer (
    turn_id      INTEGER NOT NULL,
    creditor_id  BIGINT  NOT NULL,
    debtor_id    BIGINT  NOT NULL,
    amount       BIGINT  NOT NULL,
    collector_id BIGINT  NOT NULL,
    CONSTRAINT sell_offer_pkey PRIMARY KEY (turn_id, creditor_id, debtor_id),
    CONSTRAINT sell_offer_amount_check CHECK (amount > 0)
);

CREATE TABLE buy_offer (
    turn_id     INTEGER NOT NULL,
    creditor_id BIGINT  NOT NULL,
    debtor_id   BIGINT  NOT NULL,
    amount      BIGINT  NOT NULL,
    CONSTRAINT buy_offer_pkey PRIMARY KEY (turn_id, creditor_id, debtor_id),
    CONSTRAINT buy_offer_amount_check CHECK (amount > 0)
);


-- Phase 3 results, written by the solver; each worker copies and deletes
-- the rows of its own shard (selected by the *_hash column).

-- Amount to withdraw from a customer account.
CREATE TABLE creditor_taking (
    turn_id       INTEGER  NOT NULL,
    creditor_id   BIGINT   NOT NULL,
    debtor_id     BIGINT   NOT NULL,
    creditor_hash SMALLINT NOT NULL,
    amount        BIGINT   NOT NULL,
    collector_id  BIGINT   NOT NULL,
    CONSTRAINT creditor_taking_pkey PRIMARY KEY (turn_id, creditor_id, debtor_id),
    CONSTRAINT creditor_taking_amount_check CHECK (amount > 0)
);

-- The same withdrawal, seen from the collector that receives it.
CREATE TABLE collector_collecting (
    turn_id        INTEGER  NOT NULL,
    debtor_id      BIGINT   NOT NULL,
    creditor_id    BIGINT   NOT NULL,
    amount         BIGINT   NOT NULL,
    collector_id   BIGINT   NOT NULL,
    collector_hash SMALLINT NOT NULL,
    CONSTRAINT collector_collecting_pkey PRIMARY KEY (turn_id, debtor_id, creditor_id),
    CONSTRAINT collector_collecting_amount_check CHECK (amount > 0)
);

-- Amount one collector must transfer to another collector.
CREATE TABLE collector_sending (
    turn_id             INTEGER  NOT NULL,
    debtor_id           BIGINT   NOT NULL,
    from_collector_id   BIGINT   NOT NULL,
    to_collector_id     BIGINT   NOT NULL,
    from_collector_hash SMALLINT NOT NULL,
    amount              BIGINT   NOT NULL,
    CONSTRAINT collector_sending_pkey
        PRIMARY KEY (turn_id, debtor_id, from_collector_id, to_collector_id),
    CONSTRAINT collector_sending_amount_check CHECK (amount > 0),
    CONSTRAINT collector_sending_check CHECK (from_collector_id != to_collector_id)
);

-- The same transfer, seen from the receiving collector.
CREATE TABLE collector_receiving (
    turn_id           INTEGER  NOT NULL,
    debtor_id         BIGINT   NOT NULL,
    to_collector_id   BIGINT   NOT NULL,
    from_collector_id BIGINT   NOT NULL,
    to_collector_hash SMALLINT NOT NULL,
    amount            BIGINT   NOT NULL,
    CONSTRAINT collector_receiving_pkey
        PRIMARY KEY (turn_id, debtor_id, to_collector_id, from_collector_id),
    CONSTRAINT collector_receiving_amount_check CHECK (amount > 0),
    CONSTRAINT collector_receiving_check CHECK (from_collector_id != to_collector_id)
);

-- Amount a collector must deposit to a customer account.
CREATE TABLE collector_dispatching (
    turn_id        INTEGER  NOT NULL,
    debtor_id      BIGINT   NOT NULL,
    creditor_id    BIGINT   NOT NULL,
    amount         BIGINT   NOT NULL,
    collector_id   BIGINT   NOT NULL,
    collector_hash SMALLINT NOT NULL,
    CONSTRAINT collector_dispatching_pkey PRIMARY KEY (turn_id, debtor_id, creditor_id),
    CONSTRAINT collector_dispatching_amount_check CHECK (amount > 0)
);

-- The same deposit, seen from the customer account.
CREATE TABLE creditor_giving (
    turn_id       INTEGER  NOT NULL,
    creditor_id   BIGINT   NOT NULL,
    debtor_id     BIGINT   NOT NULL,
    creditor_hash SMALLINT NOT NULL,
    amount        BIGINT   NOT NULL,
    collector_id  BIGINT   NOT NULL,
    CONSTRAINT creditor_giving_pkey PRIMARY KEY (turn_id, creditor_id, debtor_id),
    CONSTRAINT creditor_giving_amount_check CHECK (amount > 0)
);


-- Alembic bookkeeping, identical to what Alembic itself creates, so that the
-- reference's Python tooling sees this database as being at head.
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('88cd664f51a3');
