//! Inserting many rows with one statement: each column is bound as one PostgreSQL array and
//! `unnest` turns the arrays back into rows (`INSERT INTO t (…) SELECT * FROM unnest($1, …)`),
//! which is several times faster than a multi-row `VALUES` list and has no bind-parameter
//! limit. Both databases use it.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::sql_types::{Array, Bool, Date, Int2, Int4, Int8, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

/// Rows inserted by one statement at the most.
pub const BATCH: usize = 50_000;

/// One column of the rows to insert.
#[derive(Debug, Clone)]
pub enum Column {
    /// `smallint`.
    I16(Vec<i16>),
    /// `integer`.
    I32(Vec<i32>),
    /// `bigint`.
    I64(Vec<i64>),
    /// `boolean`.
    Bool(Vec<bool>),
    /// `date`.
    Date(Vec<NaiveDate>),
    /// `timestamp with time zone`.
    Timestamptz(Vec<DateTime<Utc>>),
    /// `varchar`/`text`.
    Text(Vec<String>),
    /// Nullable `varchar`/`text`.
    OptText(Vec<Option<String>>),
    /// Nullable `bigint`.
    OptI64(Vec<Option<i64>>),
    /// Nullable `double precision`.
    OptF64(Vec<Option<f64>>),
}

impl Column {
    fn cast(&self) -> &'static str {
        match self {
            Self::I16(_) => "int2",
            Self::I32(_) => "int4",
            Self::I64(_) | Self::OptI64(_) => "int8",
            Self::Bool(_) => "bool",
            Self::Date(_) => "date",
            Self::Timestamptz(_) => "timestamptz",
            Self::Text(_) | Self::OptText(_) => "text",
            Self::OptF64(_) => "float8",
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::I16(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::Date(v) => v.len(),
            Self::Timestamptz(v) => v.len(),
            Self::Text(v) => v.len(),
            Self::OptText(v) => v.len(),
            Self::OptI64(v) => v.len(),
            Self::OptF64(v) => v.len(),
        }
    }
}

/// Inserts the rows whose columns are `columns` (named `names`, all of one length) into
/// `table`; `table` and `names` are the caller's constants, never input. Returns the number of
/// rows inserted (fewer than given with an `ON CONFLICT DO NOTHING` `suffix`).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    table: &str,
    names: &[&str],
    columns: Vec<Column>,
    suffix: &str,
) -> QueryResult<usize> {
    debug_assert_eq!(names.len(), columns.len());
    match columns.as_slice() {
        [first, ..] if first.len() > 0 => {}
        _ => return Ok(0),
    }
    let unnest: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}[]", i + 1, c.cast()))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM unnest({}) {suffix}",
        names.join(", "),
        unnest.join(", ")
    );
    let mut query = diesel::sql_query(sql).into_boxed::<Pg>();
    for column in columns {
        query = match column {
            Column::I16(v) => query.bind::<Array<Int2>, _>(v),
            Column::I32(v) => query.bind::<Array<Int4>, _>(v),
            Column::I64(v) => query.bind::<Array<Int8>, _>(v),
            Column::Bool(v) => query.bind::<Array<Bool>, _>(v),
            Column::Date(v) => query.bind::<Array<Date>, _>(v),
            Column::Timestamptz(v) => query.bind::<Array<Timestamptz>, _>(v),
            Column::Text(v) => query.bind::<Array<Text>, _>(v),
            Column::OptText(v) => query.bind::<Array<Nullable<Text>>, _>(v),
            Column::OptI64(v) => query.bind::<Array<Nullable<Int8>>, _>(v),
            Column::OptF64(v) => query.bind::<Array<Nullable<diesel::sql_types::Double>>, _>(v),
        };
    }
    query.execute(conn).await
}

/// Inserts `rows` into `table` in batches of [`BATCH`], each batch turned into columns by
/// `columns`.
pub async fn insert_all<R>(
    conn: &mut AsyncPgConnection,
    table: &str,
    names: &[&str],
    rows: &[R],
    columns: impl Fn(&[R]) -> Vec<Column>,
) -> QueryResult<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(BATCH) {
        inserted += insert(conn, table, names, columns(chunk), "").await?;
    }
    Ok(inserted)
}
