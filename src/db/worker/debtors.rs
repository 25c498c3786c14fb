//! Debtor info: scheduled fetches (`debtor_info_fetch`), fetched documents
//! (`debtor_info_document`) and the locators debtors claim (`debtor_locator_claim`). See
//! `docs/messages.md#debtor-info`.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, SmallInt, Text, Timestamptz};
use diesel::upsert::excluded;
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryResult, Queryable,
    QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::debtor_locator_claim;
use crate::messages::{FetchDebtorInfo, StoreDocument};

/// Schedules a fetch, or merges the request into the one already scheduled for the same
/// `(iri, debtor_id)`: the fetch kinds add up, a non-empty `forced_iri` replaces the old one,
/// the lower recursion level wins; attempts and the next attempt's time stay as they are.
pub async fn schedule_fetch(
    conn: &mut AsyncPgConnection,
    m: &FetchDebtorInfo,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO debtor_info_fetch AS f \
           (iri, debtor_id, is_locator_fetch, is_discovery_fetch, forced_iri, recursion_level, \
            inserted_at, attempts_count, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7) \
         ON CONFLICT (iri, debtor_id) DO UPDATE SET \
           is_locator_fetch = f.is_locator_fetch OR EXCLUDED.is_locator_fetch, \
           is_discovery_fetch = f.is_discovery_fetch OR EXCLUDED.is_discovery_fetch, \
           forced_iri = COALESCE(NULLIF(EXCLUDED.forced_iri, ''), f.forced_iri), \
           recursion_level = LEAST(f.recursion_level, EXCLUDED.recursion_level)",
    )
    .bind::<Text, _>(&m.iri)
    .bind::<BigInt, _>(m.debtor_id)
    .bind::<Bool, _>(m.is_locator_fetch)
    .bind::<Bool, _>(m.is_discovery_fetch)
    .bind::<Nullable<Text>, _>(m.forced_iri.as_deref())
    .bind::<SmallInt, _>(m.recursion_level)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a fetched document, unless the stored one was fetched at `m.ts` or later.
pub async fn store_document(conn: &mut AsyncPgConnection, m: &StoreDocument) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO debtor_info_document AS d \
           (debtor_info_locator, debtor_id, peg_debtor_info_locator, peg_debtor_id, \
            peg_exchange_rate, will_not_change_until, fetched_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (debtor_info_locator) DO UPDATE SET \
           debtor_id = EXCLUDED.debtor_id, \
           peg_debtor_info_locator = EXCLUDED.peg_debtor_info_locator, \
           peg_debtor_id = EXCLUDED.peg_debtor_id, \
           peg_exchange_rate = EXCLUDED.peg_exchange_rate, \
           will_not_change_until = EXCLUDED.will_not_change_until, \
           fetched_at = EXCLUDED.fetched_at \
         WHERE d.fetched_at < EXCLUDED.fetched_at",
    )
    .bind::<Text, _>(&m.debtor_info_locator)
    .bind::<BigInt, _>(m.debtor_id)
    .bind::<Nullable<Text>, _>(m.peg_debtor_info_locator.as_deref())
    .bind::<Nullable<BigInt>, _>(m.peg_debtor_id)
    .bind::<Nullable<Double>, _>(m.peg_exchange_rate)
    .bind::<Nullable<Timestamptz>, _>(m.will_not_change_until)
    .bind::<Timestamptz, _>(m.ts)
    .execute(conn)
    .await?;
    Ok(())
}

/// A debtor's locator claim.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct LocatorClaim {
    /// The confirmed locator (`None` until a document confirms one).
    pub debtor_info_locator: Option<String>,
    /// When the locator was last fetched (set together with the locator).
    pub latest_locator_fetch_at: Option<DateTime<Utc>>,
    /// When a discovery fetch was last requested.
    pub latest_discovery_fetch_at: DateTime<Utc>,
    /// When a forced re-fetch of the locator was last requested.
    pub forced_locator_refetch_at: Option<DateTime<Utc>>,
}

/// The debtor's claim, locked for update until the transaction ends.
pub async fn lock_claim(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
) -> QueryResult<Option<LocatorClaim>> {
    use debtor_locator_claim::dsl as c;
    c::debtor_locator_claim
        .find(debtor_id)
        .select((
            c::debtor_info_locator,
            c::latest_locator_fetch_at,
            c::latest_discovery_fetch_at,
            c::forced_locator_refetch_at,
        ))
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Inserts a claim without a locator, whose discovery fetch was requested at `now`.
pub async fn insert_unconfirmed_claim(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    use debtor_locator_claim::dsl as c;
    diesel::insert_into(c::debtor_locator_claim)
        .values((
            c::debtor_id.eq(debtor_id),
            c::latest_discovery_fetch_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Overwrites the claim's timestamps (the locator stays).
pub async fn update_claim_times(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
    claim: &LocatorClaim,
) -> QueryResult<()> {
    use debtor_locator_claim::dsl as c;
    diesel::update(c::debtor_locator_claim.find(debtor_id))
        .set((
            c::latest_locator_fetch_at.eq(claim.latest_locator_fetch_at),
            c::latest_discovery_fetch_at.eq(claim.latest_discovery_fetch_at),
            c::forced_locator_refetch_at.eq(claim.forced_locator_refetch_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that the debtor claims `locator`, fetched at `now` (a new claim also counts as
/// discovered at `now`).
pub async fn confirm_claim(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
    locator: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    use debtor_locator_claim::dsl as c;
    diesel::insert_into(c::debtor_locator_claim)
        .values((
            c::debtor_id.eq(debtor_id),
            c::debtor_info_locator.eq(locator),
            c::latest_locator_fetch_at.eq(now),
            c::latest_discovery_fetch_at.eq(now),
        ))
        .on_conflict(c::debtor_id)
        .do_update()
        .set((
            c::debtor_info_locator.eq(excluded(c::debtor_info_locator)),
            c::latest_locator_fetch_at.eq(excluded(c::latest_locator_fetch_at)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A due fetch, with the stored document of its IRI when the fetch is not forced to another
/// URL.
#[derive(Debug, Clone, QueryableByName)]
pub struct DueFetch {
    /// The IRI (the fetch's sharding key).
    #[diesel(sql_type = Text)]
    pub iri: String,
    /// The debtor the document is expected to describe.
    #[diesel(sql_type = BigInt)]
    pub debtor_id: i64,
    /// Whether the IRI is the debtor's official locator.
    #[diesel(sql_type = Bool)]
    pub is_locator_fetch: bool,
    /// Whether the fetch may confirm the debtor's locator.
    #[diesel(sql_type = Bool)]
    pub is_discovery_fetch: bool,
    /// The URL to fetch instead of the IRI (when not empty).
    #[diesel(sql_type = Nullable<Text>)]
    pub forced_iri: Option<String>,
    /// How far along a peg chain the fetch is.
    #[diesel(sql_type = SmallInt)]
    pub recursion_level: i16,
    /// Failed attempts so far.
    #[diesel(sql_type = SmallInt)]
    pub attempts_count: i16,
    /// The stored document whose locator is the IRI (only when `forced_iri` is NULL).
    #[diesel(embed)]
    pub document: CachedDocument,
}

/// The stored document joined to a [`DueFetch`]; every field is NULL when there is none.
#[derive(Debug, Clone, QueryableByName)]
pub struct CachedDocument {
    /// The document's locator.
    #[diesel(sql_type = Nullable<Text>)]
    pub debtor_info_locator: Option<String>,
    /// The document's debtor.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub doc_debtor_id: Option<i64>,
    /// The peg's locator.
    #[diesel(sql_type = Nullable<Text>)]
    pub peg_debtor_info_locator: Option<String>,
    /// The peg's debtor.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub peg_debtor_id: Option<i64>,
    /// The peg's exchange rate.
    #[diesel(sql_type = Nullable<Double>)]
    pub peg_exchange_rate: Option<f64>,
    /// Until when the document does not change.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub will_not_change_until: Option<DateTime<Utc>>,
    /// When the document was fetched.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub fetched_at: Option<DateTime<Utc>>,
}

/// Locks up to `limit` fetches due at `now` that no other fetcher has locked (`FOR UPDATE
/// SKIP LOCKED`, no particular order), each with its cached document.
pub async fn lock_due_fetches(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<DueFetch>> {
    diesel::sql_query(
        "SELECT f.iri, f.debtor_id, f.is_locator_fetch, f.is_discovery_fetch, f.forced_iri, \
                f.recursion_level, f.attempts_count, \
                d.debtor_info_locator, d.debtor_id AS doc_debtor_id, d.peg_debtor_info_locator, \
                d.peg_debtor_id, d.peg_exchange_rate, d.will_not_change_until, d.fetched_at \
         FROM debtor_info_fetch f \
         LEFT JOIN debtor_info_document d \
           ON d.debtor_info_locator = f.iri AND f.forced_iri IS NULL \
         WHERE f.next_attempt_at <= $1 \
         LIMIT $2 \
         FOR UPDATE OF f SKIP LOCKED",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// A failed fetch's next attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Reschedule {
    /// The fetch's IRI.
    pub iri: String,
    /// The fetch's debtor.
    pub debtor_id: i64,
    /// Failed attempts, this one included.
    pub attempts_count: i16,
    /// The HTTP status of the failed attempt, if it got one.
    pub errorcode: Option<i16>,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
}

/// Records failed attempts made at `attempted_at`; returns how many fetches were updated.
pub async fn reschedule_fetches(
    conn: &mut AsyncPgConnection,
    fetches: &[Reschedule],
    attempted_at: DateTime<Utc>,
) -> QueryResult<usize> {
    if fetches.is_empty() {
        return Ok(0);
    }
    let iris: Vec<&str> = fetches.iter().map(|f| f.iri.as_str()).collect();
    let debtor_ids: Vec<i64> = fetches.iter().map(|f| f.debtor_id).collect();
    let attempts: Vec<i16> = fetches.iter().map(|f| f.attempts_count).collect();
    let errorcodes: Vec<Option<i16>> = fetches.iter().map(|f| f.errorcode).collect();
    let next: Vec<DateTime<Utc>> = fetches.iter().map(|f| f.next_attempt_at).collect();
    diesel::sql_query(
        "UPDATE debtor_info_fetch f SET \
           attempts_count = r.attempts_count, \
           latest_attempt_at = $6, \
           latest_attempt_errorcode = r.errorcode, \
           next_attempt_at = r.next_attempt_at \
         FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::smallint[], \
                     $5::timestamptz[]) \
              AS r(iri, debtor_id, attempts_count, errorcode, next_attempt_at) \
         WHERE f.iri = r.iri AND f.debtor_id = r.debtor_id",
    )
    .bind::<Array<Text>, _>(iris)
    .bind::<Array<BigInt>, _>(debtor_ids)
    .bind::<Array<SmallInt>, _>(attempts)
    .bind::<Array<Nullable<SmallInt>>, _>(errorcodes)
    .bind::<Array<Timestamptz>, _>(next)
    .bind::<Timestamptz, _>(attempted_at)
    .execute(conn)
    .await
}

/// Deletes the fetches `(iri, debtor_id)`; returns how many were deleted.
pub async fn delete_fetches(
    conn: &mut AsyncPgConnection,
    keys: &[(&str, i64)],
) -> QueryResult<usize> {
    if keys.is_empty() {
        return Ok(0);
    }
    let iris: Vec<&str> = keys.iter().map(|(iri, _)| *iri).collect();
    let debtor_ids: Vec<i64> = keys.iter().map(|(_, id)| *id).collect();
    diesel::sql_query(
        "DELETE FROM debtor_info_fetch f \
         USING unnest($1::text[], $2::bigint[]) AS k(iri, debtor_id) \
         WHERE f.iri = k.iri AND f.debtor_id = k.debtor_id",
    )
    .bind::<Array<Text>, _>(iris)
    .bind::<Array<BigInt>, _>(debtor_ids)
    .execute(conn)
    .await
}
