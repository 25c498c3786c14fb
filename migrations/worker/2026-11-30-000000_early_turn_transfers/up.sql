-- Not in the reference's schema (an additive table; docs/turns.md#early-transfers).
--
-- A collector's incoming turn transfer (a seller's payment, or another collector's) can
-- arrive before this shard has copied the turn's transfer plans from the solver: shards copy
-- them independently, up to APP_ROLL_WORKER_TURNS_WAIT apart. The reference then loses the
-- receipt (the amount counts as not collected or not received until the plans are purged).
-- Such receipts wait here until the copy applies them, in the same transaction.
CREATE TABLE early_turn_transfer (
    collector_id BIGINT NOT NULL,
    turn_id INTEGER NOT NULL,
    debtor_id BIGINT NOT NULL,
    -- 0: collecting (from a seller); 1: sending (from another collector).
    kind SMALLINT NOT NULL,
    -- The seller, or the sending collector.
    other_id BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    inserted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT early_turn_transfer_pkey PRIMARY KEY (collector_id, turn_id, debtor_id, kind, other_id, amount),
    CONSTRAINT early_turn_transfer_kind_check CHECK (kind IN (0, 1)),
    CONSTRAINT early_turn_transfer_amount_check CHECK (amount > 0)
);
