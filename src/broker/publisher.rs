//! Publishing batches of messages with publisher confirms.
