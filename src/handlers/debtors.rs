//! `FetchDebtorInfo`, `DiscoverDebtor`, `ConfirmDebtor` and `StoreDocument`: the worker's
//! bookkeeping of debtor info documents (see `docs/messages.md#debtor-info`).

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;

use super::HandlerError;
use crate::config::Config;
use crate::db::worker::debtors as db;
use crate::debtors::days;
use crate::messages::{ConfirmDebtor, DiscoverDebtor, FetchDebtorInfo, StoreDocument};
use crate::outbox;

/// One hour: added to the expiry periods, so that a re-fetch scheduled exactly one period
/// later is not refused for a few seconds of difference.
const HOUR: Duration = Duration::hours(1);

/// `FetchDebtorInfo`: schedules the fetch, or merges it into the one already scheduled.
pub async fn fetch_debtor_info(
    conn: &mut AsyncPgConnection,
    m: &FetchDebtorInfo,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    db::schedule_fetch(conn, m, now).await?;
    Ok(())
}

/// `StoreDocument`: stores the document unless a document fetched later is stored.
pub async fn store_document(
    conn: &mut AsyncPgConnection,
    m: &StoreDocument,
) -> Result<(), HandlerError> {
    db::store_document(conn, m).await?;
    Ok(())
}

/// A locator fetch request for `debtor_id`.
fn locator_fetch(
    iri: &str,
    debtor_id: i64,
    forced_iri: Option<&str>,
    now: DateTime<Utc>,
) -> FetchDebtorInfo {
    FetchDebtorInfo {
        iri: iri.to_owned(),
        debtor_id,
        is_locator_fetch: true,
        is_discovery_fetch: false,
        forced_iri: forced_iri.map(str::to_owned),
        recursion_level: 0,
        ts: now,
    }
}

/// A discovery fetch request for `debtor_id`.
fn discovery_fetch(iri: &str, debtor_id: i64, now: DateTime<Utc>) -> FetchDebtorInfo {
    FetchDebtorInfo {
        iri: iri.to_owned(),
        debtor_id,
        is_locator_fetch: false,
        is_discovery_fetch: true,
        forced_iri: None,
        recursion_level: 0,
        ts: now,
    }
}

/// `DiscoverDebtor`: an account names `m.iri` as its debtor's info document. The first time,
/// a claim without a locator is recorded and the IRI is fetched to discover the locator.
/// Later, the confirmed locator is fetched again once its document may have expired (or when
/// a forced re-fetch is asked for, at most once per expiry period, through `m.iri`), and the
/// IRI is fetched again once the claim may have expired.
pub async fn discover_debtor(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &DiscoverDebtor,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let Some(mut claim) = db::lock_claim(conn, m.debtor_id).await? else {
        db::insert_unconfirmed_claim(conn, m.debtor_id, now).await?;
        outbox::emit(conn, discovery_fetch(&m.iri, m.debtor_id, now)).await?;
        return Ok(());
    };
    let original = claim.clone();
    if let (Some(locator), Some(fetched_at)) =
        (&claim.debtor_info_locator, claim.latest_locator_fetch_at)
    {
        let expiry = days(config.worker.debtor_info_expiry_days) + HOUR;
        let forced = m.force_locator_refetch
            && claim
                .forced_locator_refetch_at
                .is_none_or(|at| now - at > expiry);
        if forced {
            claim.forced_locator_refetch_at = Some(now);
        }
        if forced || now - fetched_at > expiry {
            let forced_iri = forced.then_some(m.iri.as_str());
            outbox::emit(conn, locator_fetch(locator, m.debtor_id, forced_iri, now)).await?;
            claim.latest_locator_fetch_at = Some(now);
        }
    }
    let claim_expiry = days(config.worker.locator_claim_expiry_days) + HOUR;
    if now - claim.latest_discovery_fetch_at > claim_expiry {
        outbox::emit(conn, discovery_fetch(&m.iri, m.debtor_id, now)).await?;
        claim.latest_discovery_fetch_at = now;
    }
    if claim != original {
        db::update_claim_times(conn, m.debtor_id, &claim).await?;
    }
    Ok(())
}

/// `ConfirmDebtor`: a document fetched from an account's IRI confirmed the debtor's locator.
/// Unless the message is older than `APP_EXTREME_MESSAGE_DELAY_DAYS`, the locator becomes the
/// debtor's claim and is fetched.
pub async fn confirm_debtor(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &ConfirmDebtor,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    if now - m.ts > days(config.worker.extreme_message_delay_days) {
        return Ok(());
    }
    db::confirm_claim(conn, m.debtor_id, &m.debtor_info_locator, now).await?;
    let fetch = locator_fetch(&m.debtor_info_locator, m.debtor_id, None, now);
    outbox::emit(conn, fetch).await?;
    Ok(())
}
