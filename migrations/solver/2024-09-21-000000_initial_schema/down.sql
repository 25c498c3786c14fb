-- Drops everything created by up.sql, in reverse order. (turn_turn_id_seq is
-- owned by turn.turn_id and goes away together with the turn table.)
DROP TABLE alembic_version;
DROP TABLE creditor_giving;
DROP TABLE collector_dispatching;
DROP TABLE collector_receiving;
DROP TABLE collector_sending;
DROP TABLE collector_collecting;
DROP TABLE creditor_taking;
DROP TABLE buy_offer;
DROP TABLE sell_offer;
DROP TABLE currency_info;
DROP TABLE confirmed_debtor;
DROP TABLE debtor_info;
DROP TABLE collector_account;
DROP TABLE turn;
