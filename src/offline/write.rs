//! Writing CSV files: the six result tables, and a turn's input (for benchmarks and tests).

use super::read;
use crate::solver::rows::*;
use crate::solver::{ResultRows, TurnInput};
use anyhow::Context;
use csv::{Writer, WriterBuilder};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// A result row that is written as six integer columns.
pub trait CsvRow {
    /// The table, which names the file `<table>.csv`.
    const TABLE: &'static str;
    /// The header: the table's columns in DDL order.
    const COLUMNS: [&'static str; 6];
    /// The row's values, in column order.
    fn values(&self) -> [i64; 6];
}

macro_rules! csv_row {
    ($row:ty, $table:literal, [$($field:ident),+]) => {
        impl CsvRow for $row {
            const TABLE: &'static str = $table;
            const COLUMNS: [&'static str; 6] = [$(stringify!($field)),+];
            fn values(&self) -> [i64; 6] {
                [$(i64::from(self.$field)),+]
            }
        }
    };
}

csv_row!(
    CreditorTaking,
    "creditor_taking",
    [
        turn_id,
        creditor_id,
        debtor_id,
        creditor_hash,
        amount,
        collector_id
    ]
);
csv_row!(
    CollectorCollecting,
    "collector_collecting",
    [
        turn_id,
        debtor_id,
        creditor_id,
        amount,
        collector_id,
        collector_hash
    ]
);
csv_row!(
    CollectorSending,
    "collector_sending",
    [
        turn_id,
        debtor_id,
        from_collector_id,
        to_collector_id,
        from_collector_hash,
        amount
    ]
);
csv_row!(
    CollectorReceiving,
    "collector_receiving",
    [
        turn_id,
        debtor_id,
        to_collector_id,
        from_collector_id,
        to_collector_hash,
        amount
    ]
);
csv_row!(
    CollectorDispatching,
    "collector_dispatching",
    [
        turn_id,
        debtor_id,
        creditor_id,
        amount,
        collector_id,
        collector_hash
    ]
);
csv_row!(
    CreditorGiving,
    "creditor_giving",
    [
        turn_id,
        creditor_id,
        debtor_id,
        creditor_hash,
        amount,
        collector_id
    ]
);

fn create(path: &Path) -> anyhow::Result<Writer<File>> {
    let file = File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
    Ok(WriterBuilder::new()
        .buffer_capacity(1 << 20)
        .from_writer(file))
}

/// Formats an integer into `buf` and returns the digits.
fn format_int(buf: &mut [u8; 20], n: i64) -> &[u8] {
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Writes one table as `dir/<table>.csv`; returns the number of rows.
///
/// The rows hold only integers, which never need quoting, so lines are formatted directly
/// rather than field by field through the CSV writer.
pub fn write_table<R: CsvRow>(dir: &Path, rows: &[R]) -> anyhow::Result<usize> {
    let path = dir.join(format!("{}.csv", R::TABLE));
    let file = File::create(&path).with_context(|| format!("{}: cannot create", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let fail = |e: std::io::Error| anyhow::anyhow!("{}: cannot write: {e}", path.display());
    writeln!(out, "{}", R::COLUMNS.join(",")).map_err(fail)?;
    let (mut buf, mut line) = ([0u8; 20], Vec::with_capacity(128));
    for row in rows {
        line.clear();
        for (i, value) in row.values().into_iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            line.extend_from_slice(format_int(&mut buf, value));
        }
        line.push(b'\n');
        out.write_all(&line).map_err(fail)?;
    }
    out.flush().map_err(fail)?;
    Ok(rows.len())
}

/// Writes the six result tables into `dir`; returns (table, rows) pairs.
pub fn write_results(dir: &Path, rows: &ResultRows) -> anyhow::Result<Vec<(&'static str, usize)>> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    Ok(vec![
        (
            CreditorTaking::TABLE,
            write_table(dir, &rows.creditor_taking)?,
        ),
        (
            CollectorCollecting::TABLE,
            write_table(dir, &rows.collector_collecting)?,
        ),
        (
            CollectorSending::TABLE,
            write_table(dir, &rows.collector_sending)?,
        ),
        (
            CollectorReceiving::TABLE,
            write_table(dir, &rows.collector_receiving)?,
        ),
        (
            CollectorDispatching::TABLE,
            write_table(dir, &rows.collector_dispatching)?,
        ),
        (
            CreditorGiving::TABLE,
            write_table(dir, &rows.creditor_giving)?,
        ),
    ])
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Writes a turn's input as the five CSV files `solve_offline` reads.
pub fn write_input(dir: &Path, input: &TurnInput) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let p = &input.params;
    let mut w = create(&dir.join(read::TURN))?;
    w.write_record(std::iter::once("turn_id").chain(read::TURN_COLUMNS))?;
    w.write_record([
        p.turn_id.to_string(),
        p.base_debtor_info_locator.clone(),
        p.base_debtor_id.to_string(),
        p.max_distance_to_base.to_string(),
        p.min_trade_amount.to_string(),
    ])?;
    w.flush()?;
    let mut w = create(&dir.join(read::CURRENCY_INFO))?;
    w.write_record(std::iter::once("turn_id").chain(read::CURRENCY_INFO_COLUMNS))?;
    for c in &input.currencies {
        w.write_record([
            p.turn_id.to_string(),
            c.debtor_info_locator.clone(),
            c.debtor_id.to_string(),
            opt(c.peg_debtor_info_locator.clone()),
            opt(c.peg_debtor_id),
            opt(c.peg_exchange_rate),
            (if c.is_confirmed { "t" } else { "f" }).to_owned(),
        ])?;
    }
    w.flush()?;
    let mut w = create(&dir.join(read::COLLECTOR_ACCOUNT))?;
    w.write_record(read::COLLECTOR_ACCOUNT_COLUMNS)?;
    for c in &input.collectors {
        w.write_record([
            c.debtor_id.to_string(),
            c.collector_id.to_string(),
            "2".to_owned(),
        ])?;
    }
    w.flush()?;
    write_offers(dir, input)
}

fn write_offers(dir: &Path, input: &TurnInput) -> anyhow::Result<()> {
    let mut buf = [[0u8; 20]; 4];
    let mut w = create(&dir.join(read::SELL_OFFER))?;
    w.write_record(read::SELL_OFFER_COLUMNS)?;
    for o in &input.sell_offers {
        let [a, b, c, d] = &mut buf;
        w.write_record([
            format_int(a, o.creditor_id),
            format_int(b, o.debtor_id),
            format_int(c, o.amount),
            format_int(d, o.collector_id),
        ])?;
    }
    w.flush()?;
    let mut w = create(&dir.join(read::BUY_OFFER))?;
    w.write_record(read::BUY_OFFER_COLUMNS)?;
    for o in &input.buy_offers {
        let [a, b, c, _] = &mut buf;
        w.write_record([
            format_int(a, o.creditor_id),
            format_int(b, o.debtor_id),
            format_int(c, o.amount),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_integers() {
        let mut buf = [0u8; 20];
        for n in [0, 7, -7, 1234567890, i64::MAX, i64::MIN, -10] {
            assert_eq!(super::format_int(&mut buf, n), n.to_string().as_bytes());
        }
    }
}
