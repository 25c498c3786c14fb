DROP TABLE early_turn_transfer;
