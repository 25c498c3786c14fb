//! `fetch_debtor_infos`: performs the scheduled fetches of debtor info documents (see
//! `docs/messages.md#debtor-info`).
//!
//! A pass runs batches until one is not full. A batch is one transaction: it locks up to
//! `APP_DEBTOR_INFO_FETCH_BURST_COUNT` due fetches (`FOR UPDATE SKIP LOCKED`, so several
//! fetchers share a database), resolves each one — dropped when its IRI belongs to another
//! shard, answered from the stored document while that has not expired, otherwise fetched
//! over HTTPS, at most `HTTP_FETCH_CONNECTIONS` at a time — sends what the documents say
//! (`ConfirmDebtor`, `StoreDocument`, `FetchDebtorInfo` for the peg), reschedules the failed
//! fetches with a randomized exponential back-off, deletes the others, and commits.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use super::document::{self, Document, InvalidDocument, MAX_DOCUMENT_BYTES, Peg};
use crate::config::Config;
use crate::db::WorkerPool;
use crate::db::retry::{RetryPolicy, with_retries};
use crate::db::worker::debtors::{self as db, CachedDocument, DueFetch, Reschedule};
use crate::handlers::HandlerError;
use crate::jobs::Job;
use crate::messages::{ConfirmDebtor, FetchDebtorInfo, StoreDocument};
use crate::outbox;
use crate::sharding::ShardingRealm;

/// The wait before the first retry of a failed fetch; each further retry waits twice as long
/// (times a random factor in `[0.5, 1)`), until the wait would reach the expiry period of
/// documents, when the fetch is given up.
pub const RETRY_MIN_WAIT: Duration = Duration::from_secs(60);

/// Redirects followed by one request; one more fails the attempt.
pub const MAX_REDIRECTS: usize = 2;

/// How the fetcher works.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Requests at the same time (`HTTP_FETCH_CONNECTIONS`, `-c`).
    pub connections: u32,
    /// The longest a request may take, body included (`HTTP_FETCH_TIMEOUT`, `-t`).
    pub timeout: Duration,
    /// Fetches per batch (`APP_DEBTOR_INFO_FETCH_BURST_COUNT`).
    pub burst_count: u32,
    /// Whether TLS certificates are verified (`APP_VERIFY_SSL_CERTS`).
    pub verify_ssl_certs: bool,
    /// After how many days a stored document has expired (`APP_DEBTOR_INFO_EXPIRY_DAYS`).
    pub debtor_info_expiry_days: f64,
    /// How long a peg chain is followed (`MAX_DISTANCE_TO_BASE`).
    pub max_distance_to_base: i16,
    /// This worker's shard: fetches of other shards' IRIs are dropped.
    pub realm: ShardingRealm,
}

impl FetchSettings {
    /// The settings of `config`, with `HTTP_FETCH_CONNECTIONS` and `HTTP_FETCH_TIMEOUT`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            connections: config.processes.http_fetch_connections,
            timeout: config.processes.http_fetch_timeout,
            burst_count: config.processes.debtor_info_fetch_burst_count,
            verify_ssl_certs: config.worker.verify_ssl_certs,
            debtor_info_expiry_days: config.worker.debtor_info_expiry_days,
            max_distance_to_base: config.turn.max_distance_to_base,
            realm: config.sharding_realm,
        }
    }
}

/// How one fetch was resolved.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Done without a document: another shard's IRI, an invalid URL, an unexpected error.
    Drop,
    /// The stored document, which has not expired.
    Cached(Document),
    /// A document fetched now.
    Fetched(Document),
    /// Failed: try again later. The HTTP status, when the server answered.
    Retry(Option<i16>),
}

impl Outcome {
    /// The outcome's name in metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::Drop => "dropped",
            Self::Cached(_) => "cached",
            Self::Fetched(_) => "fetched",
            Self::Retry(Some(_)) => "http_error",
            Self::Retry(None) => "failed",
        }
    }
}

/// Fetches debtor info documents of one worker database.
pub struct Fetcher {
    pool: WorkerPool,
    client: reqwest::Client,
    settings: FetchSettings,
}

impl Fetcher {
    /// A fetcher with its own HTTPS client.
    ///
    /// # Errors
    ///
    /// The HTTPS client cannot be built (e.g. no TLS configuration).
    pub fn new(pool: WorkerPool, settings: FetchSettings) -> anyhow::Result<Self> {
        if settings.timeout.is_zero() {
            anyhow::bail!("the HTTP fetch timeout must be positive");
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .referer(false)
            .no_proxy()
            .danger_accept_invalid_certs(!settings.verify_ssl_certs)
            .pool_max_idle_per_host(settings.connections as usize)
            .build()
            .context("cannot build the HTTPS client")?;
        Ok(Self {
            pool,
            client,
            settings,
        })
    }

    /// Runs batches until one is not full; returns how many fetches were resolved.
    ///
    /// # Errors
    ///
    /// A database error (after the retries of concurrency failures).
    pub async fn run_pass(&self) -> anyhow::Result<usize> {
        let burst = self.settings.burst_count.max(1) as usize;
        let mut count = 0;
        loop {
            let n = with_retries(RetryPolicy::FLUSH, || self.run_batch()).await?;
            count += n;
            if n < burst {
                return Ok(count);
            }
        }
    }

    /// One batch, in one transaction; returns how many fetches it resolved.
    async fn run_batch(&self) -> Result<usize, HandlerError> {
        let mut conn = self.pool.get().await?;
        let limit = i64::from(self.settings.burst_count.max(1));
        conn.build_transaction()
            .repeatable_read()
            .run(async |conn| {
                let fetches = db::lock_due_fetches(conn, Utc::now(), limit).await?;
                let outcomes = self.resolve(&fetches).await;
                let done_at = Utc::now();
                let mut reschedules = Vec::new();
                let mut deletes = Vec::new();
                for (fetch, outcome) in fetches.iter().zip(outcomes) {
                    self.send_results(conn, fetch, &outcome, done_at).await?;
                    let retry = match outcome {
                        Outcome::Retry(code) => self.reschedule(fetch, code, done_at),
                        _ => None,
                    };
                    match retry {
                        Some(r) => reschedules.push(r),
                        None => deletes.push((fetch.iri.as_str(), fetch.debtor_id)),
                    }
                }
                db::reschedule_fetches(conn, &reschedules, done_at).await?;
                db::delete_fetches(conn, &deletes).await?;
                Ok::<_, HandlerError>(fetches.len())
            })
            .await
    }

    /// The outcome of each fetch, in order: without HTTP when possible, otherwise with at
    /// most `connections` requests at a time.
    async fn resolve(&self, fetches: &[DueFetch]) -> Vec<Outcome> {
        let now = Utc::now();
        let expiry = super::days(self.settings.debtor_info_expiry_days);
        let resolved: Vec<Option<Outcome>> = fetches
            .iter()
            .map(|f| {
                if !self.settings.realm.contains_str(&f.iri) {
                    return Some(Outcome::Drop);
                }
                // No stored document: fetch it.
                let (fetched_at, document) = stored_document(&f.document)?;
                let frozen = document.will_not_change_until.is_some_and(|t| t > now);
                let expired = !frozen && now - fetched_at > expiry;
                (!expired).then_some(Outcome::Cached(document))
            })
            .collect();
        let connections = self.settings.connections.max(1) as usize;
        // Owned URLs and a cloned client: each request's future is `'static`. Requests end
        // in any order; each outcome goes back to its fetch's index.
        let requests: Vec<(usize, String)> = fetches
            .iter()
            .zip(&resolved)
            .enumerate()
            .filter(|(_, (_, r))| r.is_none())
            .map(|(i, (f, _))| (i, url_of(f).to_owned()))
            .collect();
        let (client, timeout) = (&self.client, self.settings.timeout);
        let fetched: Vec<(usize, Outcome)> = futures::stream::iter(requests)
            .map(|(i, url)| {
                let request = fetch_url(client.clone(), url, timeout);
                async move { (i, request.await) }
            })
            .buffer_unordered(connections)
            .collect()
            .await;
        let mut outcomes = resolved;
        for (i, outcome) in fetched {
            metrics::counter!("swpt_trade_debtor_info_fetches_total", "outcome" => outcome.label())
                .increment(1);
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(outcome);
            }
        }
        // Every fetch has its outcome now; `Drop` stands in for none (it cannot happen).
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Drop))
            .collect()
    }

    /// Sends what a fetch's document says: the debtor's confirmed locator (for a discovery
    /// fetch of that debtor), the peg's document (for a locator fetch, up to
    /// `MAX_DISTANCE_TO_BASE` steps along the peg chain), and the document itself (for a
    /// locator fetch that went over HTTP).
    async fn send_results(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        fetch: &DueFetch,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> diesel::QueryResult<()> {
        let (Outcome::Cached(d) | Outcome::Fetched(d)) = outcome else {
            return Ok(());
        };
        if fetch.is_discovery_fetch && fetch.debtor_id == d.debtor_id {
            let confirm = ConfirmDebtor {
                debtor_id: d.debtor_id,
                debtor_info_locator: d.debtor_info_locator.clone(),
                ts: now,
            };
            outbox::emit(conn, confirm).await?;
        }
        if fetch.is_locator_fetch && fetch.iri == d.debtor_info_locator {
            if let Some(peg) = &d.peg
                && fetch.debtor_id == d.debtor_id
                && fetch.recursion_level < self.settings.max_distance_to_base
            {
                let follow = FetchDebtorInfo {
                    iri: peg.debtor_info_locator.clone(),
                    debtor_id: peg.debtor_id,
                    is_locator_fetch: true,
                    is_discovery_fetch: false,
                    forced_iri: None,
                    recursion_level: fetch.recursion_level.saturating_add(1),
                    ts: now,
                };
                outbox::emit(conn, follow).await?;
            }
            if matches!(outcome, Outcome::Fetched(_)) {
                let store = StoreDocument {
                    debtor_info_locator: d.debtor_info_locator.clone(),
                    debtor_id: d.debtor_id,
                    peg_debtor_info_locator: d.peg.as_ref().map(|p| p.debtor_info_locator.clone()),
                    peg_debtor_id: d.peg.as_ref().map(|p| p.debtor_id),
                    peg_exchange_rate: d.peg.as_ref().map(|p| p.exchange_rate),
                    will_not_change_until: d.will_not_change_until,
                    ts: now,
                };
                outbox::emit(conn, store).await?;
            }
        }
        Ok(())
    }

    /// The next attempt of a failed fetch, or `None` to give it up.
    fn reschedule(
        &self,
        fetch: &DueFetch,
        errorcode: Option<i16>,
        now: DateTime<Utc>,
    ) -> Option<Reschedule> {
        let expiry_secs = self.settings.debtor_info_expiry_days * 86_400.0;
        let wait = retry_wait(fetch.attempts_count, expiry_secs, rand::random::<f64>())?;
        let next_attempt_at = chrono::Duration::from_std(wait)
            .ok()
            .and_then(|w| now.checked_add_signed(w))?;
        Some(Reschedule {
            iri: fetch.iri.clone(),
            debtor_id: fetch.debtor_id,
            attempts_count: fetch.attempts_count.saturating_add(1),
            errorcode,
            next_attempt_at,
        })
    }
}

/// The wait before the next attempt of a fetch that failed `attempts` times before: 1 minute ×
/// 2^attempts (the exponent at most 100), times `0.5 + 0.5 × random`; `None` (give up) when
/// the unscaled wait is not shorter than `expiry_secs`.
pub fn retry_wait(attempts: i16, expiry_secs: f64, random: f64) -> Option<Duration> {
    let n = i32::from(attempts.clamp(0, 100));
    let wait = RETRY_MIN_WAIT.as_secs_f64() * 2f64.powi(n);
    if wait < expiry_secs {
        Duration::try_from_secs_f64(wait * (0.5 + 0.5 * random.clamp(0.0, 1.0))).ok()
    } else {
        None
    }
}

/// The URL a fetch gets: its forced IRI when not empty, otherwise its IRI.
fn url_of(fetch: &DueFetch) -> &str {
    fetch
        .forced_iri
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(&fetch.iri)
}

/// Fetches one document over HTTPS: only `https://` URLs, within `timeout` (body included).
async fn fetch_url(client: reqwest::Client, url: String, timeout: Duration) -> Outcome {
    if !url.starts_with("https://") {
        tracing::info!("Failed request to {url} (InvalidURL: {url})");
        return Outcome::Drop;
    }
    let parsed = match reqwest::Url::parse(&url) {
        Ok(u) => u,
        Err(e) => {
            tracing::info!("Failed request to {url} (InvalidURL: {e})");
            return Outcome::Drop;
        }
    };
    match tokio::time::timeout(timeout, get(&client, parsed)).await {
        Ok(Ok(document)) => Outcome::Fetched(document),
        Ok(Err(failure)) => failure.outcome(&url),
        Err(_) => {
            tracing::info!("Timed out request to {url}");
            Outcome::Retry(None)
        }
    }
}

async fn get(client: &reqwest::Client, url: reqwest::Url) -> Result<Document, Failure> {
    let response = client.get(url).send().await?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        // Statuses are three digits: they fit.
        return Err(Failure::Status(i16::try_from(status.as_u16()).unwrap_or(0)));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    // The media type is checked before the body is read.
    let media_type = document::media_type(content_type.as_deref());
    if media_type != document::COIN_INFO_MEDIA_TYPE {
        return Err(Failure::Invalid(InvalidDocument::UnknownType(media_type)));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(Failure::Invalid(InvalidDocument::TooLong));
    }
    let body = read_at_most(response, MAX_DOCUMENT_BYTES + 1).await?;
    Ok(document::parse(content_type.as_deref(), &body)?)
}

/// The stored document joined to a fetch, with its fetch time, if there is one.
fn stored_document(d: &CachedDocument) -> Option<(DateTime<Utc>, Document)> {
    let peg = match (
        &d.peg_debtor_info_locator,
        d.peg_debtor_id,
        d.peg_exchange_rate,
    ) {
        (Some(locator), Some(debtor_id), Some(exchange_rate)) => Some(Peg {
            debtor_info_locator: locator.clone(),
            debtor_id,
            exchange_rate,
        }),
        _ => None,
    };
    Some((
        d.fetched_at?,
        Document {
            debtor_info_locator: d.debtor_info_locator.clone()?,
            debtor_id: d.doc_debtor_id?,
            peg,
            will_not_change_until: d.will_not_change_until,
        },
    ))
}

/// Reads at most `limit` bytes of the body (a longer body is cut there).
async fn read_at_most(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

/// Why a request brought no document.
#[derive(Debug)]
enum Failure {
    /// The server answered with another status than 200.
    Status(i16),
    /// The request failed (connection, TLS, too many redirects, timeout…).
    Http(reqwest::Error),
    /// The document is not a valid "CoinInfo" document.
    Invalid(InvalidDocument),
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        Self::Http(e)
    }
}

impl From<InvalidDocument> for Failure {
    fn from(e: InvalidDocument) -> Self {
        Self::Invalid(e)
    }
}

impl Failure {
    fn outcome(self, url: &str) -> Outcome {
        match self {
            Self::Status(code) => {
                tracing::info!("Failed request to {url} (HTTP status {code})");
                Outcome::Retry(Some(code))
            }
            Self::Http(e) if e.is_timeout() => {
                tracing::info!("Timed out request to {url}");
                Outcome::Retry(None)
            }
            Self::Http(e) if e.is_builder() => {
                tracing::info!("Failed request to {url} (InvalidURL: {e:#})");
                Outcome::Drop
            }
            Self::Http(e) => {
                tracing::info!("Failed request to {url} ({:#})", error_chain(&e));
                Outcome::Retry(None)
            }
            Self::Invalid(e) => {
                tracing::info!("Invalid debtor info document at {url} ({e})");
                Outcome::Retry(None)
            }
        }
    }
}

/// An error with its sources, for a log line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    // Bounded: error chains are short, but a cycle must not loop forever.
    for _ in 0..8 {
        let Some(s) = source else { break };
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A fetcher as a periodic job (one of `HTTP_FETCH_PROCESSES`).
pub struct FetchJob {
    /// The fetcher.
    pub fetcher: Fetcher,
    /// Its number, for log lines.
    pub number: u32,
}

impl Job for FetchJob {
    fn name(&self) -> String {
        format!("Debtor info fetcher {}", self.number)
    }

    async fn run_once(&mut self) -> anyhow::Result<()> {
        let count = self
            .fetcher
            .run_pass()
            .await
            .context("Caught error while fetching debtor info documents")?;
        if count > 0 {
            tracing::info!("{count} debtor info documents have been fetched.");
        } else {
            tracing::debug!("0 debtor info documents have been fetched.");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_until_the_expiry_period() {
        let week = 7.0 * 86_400.0;
        assert_eq!(retry_wait(0, week, 0.0), Some(Duration::from_secs(30)));
        assert_eq!(retry_wait(0, week, 1.0), Some(Duration::from_secs(60)));
        assert_eq!(retry_wait(3, week, 1.0), Some(Duration::from_secs(480)));
        // 60 s × 2^13 = 5.7 days < 7 days; 2^14 is 11.4 days: given up.
        assert!(retry_wait(13, week, 0.5).is_some());
        assert_eq!(retry_wait(14, week, 0.5), None);
        assert_eq!(retry_wait(i16::MAX, week, 0.5), None);
        assert_eq!(retry_wait(0, -10.0 * 86_400.0, 0.5), None);
        // A huge expiry period: the exponent stops at 100.
        assert!(retry_wait(i16::MAX, f64::MAX, 1.0).is_none());
        assert!(retry_wait(30, 1e40, 1.0).is_some());
    }

    #[test]
    fn a_stored_document_needs_its_columns() {
        let mut d = CachedDocument {
            debtor_info_locator: None,
            doc_debtor_id: None,
            peg_debtor_info_locator: None,
            peg_debtor_id: None,
            peg_exchange_rate: None,
            will_not_change_until: None,
            fetched_at: None,
        };
        assert!(stored_document(&d).is_none());
        d.debtor_info_locator = Some("https://example.com/1".into());
        d.doc_debtor_id = Some(1);
        d.fetched_at = Some(Utc::now());
        assert_eq!(stored_document(&d).map(|(_, doc)| doc.peg), Some(None));
        d.peg_debtor_info_locator = Some("https://example.com/2".into());
        d.peg_debtor_id = Some(2);
        d.peg_exchange_rate = Some(2.5);
        let peg = stored_document(&d).and_then(|(_, doc)| doc.peg).unwrap();
        assert_eq!(peg.debtor_id, 2);
        assert_eq!(peg.exchange_rate, 2.5);
    }
}
