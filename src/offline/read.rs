//! Loading a turn from CSV files whose header rows name the solver database's columns.
//!
//! Columns are found by name, so extra columns (such as `turn_id`) and any column order work;
//! `\copy <table> TO '<file>' CSV HEADER` exports can be used as they are. An empty field is
//! SQL NULL. Every error names the file and the line.

use crate::solver::numeric::FxHashSet;
use crate::solver::{BuyOffer, CollectorAccount, CurrencyInfo, SellOffer, TurnInput, TurnParams};
use anyhow::{Context, anyhow, bail};
use csv::{ByteRecord, Reader, ReaderBuilder};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The input files, in the order they are loaded.
pub const TURN: &str = "turn.csv";
/// See [`TURN`].
pub const CURRENCY_INFO: &str = "currency_info.csv";
/// See [`TURN`].
pub const COLLECTOR_ACCOUNT: &str = "collector_account.csv";
/// See [`TURN`].
pub const SELL_OFFER: &str = "sell_offer.csv";
/// See [`TURN`].
pub const BUY_OFFER: &str = "buy_offer.csv";

/// The columns read from `turn.csv`.
pub const TURN_COLUMNS: [&str; 4] = [
    "base_debtor_info_locator",
    "base_debtor_id",
    "max_distance_to_base",
    "min_trade_amount",
];
/// The columns read from `currency_info.csv`.
pub const CURRENCY_INFO_COLUMNS: [&str; 6] = [
    "debtor_info_locator",
    "debtor_id",
    "peg_debtor_info_locator",
    "peg_debtor_id",
    "peg_exchange_rate",
    "is_confirmed",
];
/// The columns read from `collector_account.csv`.
pub const COLLECTOR_ACCOUNT_COLUMNS: [&str; 3] = ["debtor_id", "collector_id", "status"];
/// The columns read from `sell_offer.csv`.
pub const SELL_OFFER_COLUMNS: [&str; 4] = ["creditor_id", "debtor_id", "amount", "collector_id"];
/// The columns read from `buy_offer.csv`.
pub const BUY_OFFER_COLUMNS: [&str; 3] = ["creditor_id", "debtor_id", "amount"];

/// A CSV file being read: its path, reader, and the positions of the wanted columns.
pub struct Table {
    path: PathBuf,
    reader: Reader<File>,
    columns: Vec<(&'static str, Option<usize>)>,
    record: ByteRecord,
    line: u64,
}

impl Table {
    /// Opens `dir/name` and locates the columns; `optional` ones may be missing.
    pub fn open(
        dir: &Path,
        name: &str,
        required: &[&'static str],
        optional: &[&'static str],
    ) -> anyhow::Result<Table> {
        let path = dir.join(name);
        let file = File::open(&path).with_context(|| format!("{}: cannot open", path.display()))?;
        let mut reader = ReaderBuilder::new()
            .buffer_capacity(1 << 20)
            .from_reader(file);
        let headers = reader
            .byte_headers()
            .map_err(|e| anyhow!("{} line 1: {e}", path.display()))?
            .clone();
        let find = |c: &str| headers.iter().position(|h| h == c.as_bytes());
        let mut columns = Vec::new();
        for &c in required {
            let index = find(c)
                .ok_or_else(|| anyhow!("{} line 1: missing column `{c}`", path.display()))?;
            columns.push((c, Some(index)));
        }
        columns.extend(optional.iter().map(|&c| (c, find(c))));
        Ok(Table {
            path,
            reader,
            columns,
            record: ByteRecord::new(),
            line: 1,
        })
    }

    /// Reads the next row; false at the end of the file.
    pub fn advance(&mut self) -> anyhow::Result<bool> {
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| match e.position() {
                Some(p) => anyhow!("{} line {}: {e}", self.path.display(), p.line()),
                None => anyhow!("{} line {}: {e}", self.path.display(), self.line + 1),
            })?;
        self.line = self.record.position().map_or(self.line + 1, |p| p.line());
        Ok(more)
    }

    /// The current row's field of the `k`-th wanted column; `None` when it is missing or empty.
    fn raw(&self, k: usize) -> Option<&[u8]> {
        let index = self.columns[k].1?;
        self.record.get(index).filter(|f| !f.is_empty())
    }

    /// Parses the `k`-th wanted column of the current row, which may be NULL.
    pub fn optional<T: FromStr>(&self, k: usize) -> anyhow::Result<Option<T>> {
        let Some(raw) = self.raw(k) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(raw).ok();
        match text.and_then(|t| t.parse().ok()) {
            Some(value) => Ok(Some(value)),
            None => Err(self.error(&format!(
                "column `{}`: invalid value `{}`",
                self.columns[k].0,
                String::from_utf8_lossy(raw)
            ))),
        }
    }

    /// Parses the `k`-th wanted column of the current row, which must not be NULL.
    pub fn get<T: FromStr>(&self, k: usize) -> anyhow::Result<T> {
        self.optional(k)?
            .ok_or_else(|| self.error(&format!("column `{}` is empty", self.columns[k].0)))
    }

    /// Parses a PostgreSQL boolean (`t`/`f`, `true`/`false`, `1`/`0`).
    pub fn boolean(&self, k: usize) -> anyhow::Result<bool> {
        let text: String = self.get(k)?;
        match text.to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "y" | "yes" => Ok(true),
            "f" | "false" | "0" | "n" | "no" => Ok(false),
            _ => Err(self.error(&format!(
                "column `{}`: invalid boolean `{text}`",
                self.columns[k].0
            ))),
        }
    }

    /// An error about the current row.
    pub fn error(&self, message: &str) -> anyhow::Error {
        anyhow!("{} line {}: {message}", self.path.display(), self.line)
    }
}

/// Loads the five input files of a turn.
pub fn load(dir: &Path) -> anyhow::Result<TurnInput> {
    let params = load_params(dir)?;
    let currencies = load_currencies(dir)?;
    let known: FxHashSet<i64> = currencies.iter().map(|c| c.debtor_id).collect();
    Ok(TurnInput {
        params,
        currencies,
        collectors: load_collectors(dir)?,
        sell_offers: load_sells(dir, &known)?,
        buy_offers: load_buys(dir, &known)?,
    })
}

fn load_params(dir: &Path) -> anyhow::Result<TurnParams> {
    let mut t = Table::open(dir, TURN, &TURN_COLUMNS, &["turn_id"])?;
    if !t.advance()? {
        bail!("{} line 2: expected one row", dir.join(TURN).display());
    }
    let params = TurnParams {
        base_debtor_info_locator: t.optional(0)?.unwrap_or_default(),
        base_debtor_id: t.get(1)?,
        max_distance_to_base: t.get(2)?,
        min_trade_amount: t.get(3)?,
        turn_id: t.optional(4)?.unwrap_or(0),
    };
    if params.base_debtor_id == 0
        || params.max_distance_to_base <= 0
        || params.min_trade_amount <= 0
    {
        return Err(t.error("base_debtor_id must not be 0; max_distance_to_base and min_trade_amount must be positive"));
    }
    if t.advance()? {
        return Err(t.error("expected only one row"));
    }
    Ok(params)
}

fn load_currencies(dir: &Path) -> anyhow::Result<Vec<CurrencyInfo>> {
    let mut t = Table::open(dir, CURRENCY_INFO, &CURRENCY_INFO_COLUMNS, &[])?;
    let (mut rows, mut locators) = (Vec::new(), std::collections::HashSet::new());
    while t.advance()? {
        let row = CurrencyInfo {
            debtor_info_locator: t.optional(0)?.unwrap_or_default(),
            debtor_id: t.get(1)?,
            peg_debtor_info_locator: t.optional(2)?,
            peg_debtor_id: t.optional(3)?,
            peg_exchange_rate: t.optional(4)?,
            is_confirmed: t.boolean(5)?,
        };
        if !locators.insert(row.debtor_info_locator.clone()) {
            return Err(t.error(&format!(
                "duplicated debtor_info_locator `{}`",
                row.debtor_info_locator
            )));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Active (`status = 2`) collector accounts.
fn load_collectors(dir: &Path) -> anyhow::Result<Vec<CollectorAccount>> {
    let mut t = Table::open(dir, COLLECTOR_ACCOUNT, &COLLECTOR_ACCOUNT_COLUMNS, &[])?;
    let (mut rows, mut seen) = (Vec::new(), FxHashSet::default());
    while t.advance()? {
        let row = CollectorAccount {
            debtor_id: t.get(0)?,
            collector_id: t.get(1)?,
        };
        if !seen.insert(row) {
            return Err(t.error(&format!(
                "duplicated collector account ({}, {})",
                row.debtor_id, row.collector_id
            )));
        }
        if t.get::<i16>(2)? == 2 {
            rows.push(row);
        }
    }
    Ok(rows)
}

fn check_offer(
    t: &Table,
    known: &FxHashSet<i64>,
    debtor_id: i64,
    amount: i64,
) -> anyhow::Result<()> {
    if !known.contains(&debtor_id) {
        return Err(t.error(&format!("unknown currency {debtor_id}")));
    }
    if amount <= 0 {
        return Err(t.error("amount must be positive"));
    }
    Ok(())
}

fn load_sells(dir: &Path, known: &FxHashSet<i64>) -> anyhow::Result<Vec<SellOffer>> {
    let mut t = Table::open(dir, SELL_OFFER, &SELL_OFFER_COLUMNS, &[])?;
    let mut rows = Vec::new();
    while t.advance()? {
        let row = SellOffer {
            creditor_id: t.get(0)?,
            debtor_id: t.get(1)?,
            amount: t.get(2)?,
            collector_id: t.get(3)?,
        };
        check_offer(&t, known, row.debtor_id, row.amount)?;
        if row.creditor_id == 0 || row.collector_id == 0 {
            return Err(t.error("creditor_id and collector_id must not be 0"));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn load_buys(dir: &Path, known: &FxHashSet<i64>) -> anyhow::Result<Vec<BuyOffer>> {
    let mut t = Table::open(dir, BUY_OFFER, &BUY_OFFER_COLUMNS, &[])?;
    let mut rows = Vec::new();
    while t.advance()? {
        let row = BuyOffer {
            creditor_id: t.get(0)?,
            debtor_id: t.get(1)?,
            amount: t.get(2)?,
        };
        check_offer(&t, known, row.debtor_id, row.amount)?;
        rows.push(row);
    }
    Ok(rows)
}

/// The line of the `nth` (0-based) row of `name` for which `matches` holds, for error messages.
pub fn find_line(
    dir: &Path,
    name: &str,
    columns: &[&'static str],
    nth: usize,
    matches: impl Fn(&Table) -> bool,
) -> Option<u64> {
    let mut t = Table::open(dir, name, columns, &[]).ok()?;
    let mut seen = 0;
    while t.advance().ok()? {
        if matches(&t) {
            if seen == nth {
                return Some(t.line);
            }
            seen += 1;
        }
    }
    None
}
