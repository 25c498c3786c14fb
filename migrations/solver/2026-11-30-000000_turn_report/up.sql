-- Figures of each solved turn, for the admin API's turn reports (GET /trade/turns).
-- This table is ours, not the reference's: the reference's tables are left as they
-- are, and a Python solver simply never writes here. One row per turn, written by the
-- solver in the transaction that moves the turn to phase 3 (docs/turns.md#turn-reports).
CREATE TABLE turn_report (
    turn_id              INTEGER                  NOT NULL,
    solved_at            TIMESTAMP WITH TIME ZONE NOT NULL,
    -- the solver's matcher: flow or greedy
    matcher              VARCHAR                  NOT NULL,
    -- currencies of the turn; those confirmed by their debtors; those with a price
    currencies           INTEGER                  NOT NULL,
    confirmed_currencies INTEGER                  NOT NULL,
    priced_currencies    INTEGER                  NOT NULL,
    -- offers, and their value in base units (offers of unpriced currencies count 0)
    sell_offers          BIGINT                   NOT NULL,
    sell_volume          DOUBLE PRECISION         NOT NULL,
    buy_offers           BIGINT                   NOT NULL,
    buy_volume           DOUBLE PRECISION         NOT NULL,
    -- what was traded: its value in base units, and the LP upper bound of that value
    traded_volume        DOUBLE PRECISION         NOT NULL,
    lp_bound             DOUBLE PRECISION         NOT NULL,
    -- creditors that give or take something; trading cycles that moved tokens
    participants         BIGINT                   NOT NULL,
    cycles               BIGINT,
    -- milliseconds of the solver engine (pricing, matching, aggregation)
    solve_ms             DOUBLE PRECISION         NOT NULL,
    CONSTRAINT turn_report_pkey PRIMARY KEY (turn_id)
);
