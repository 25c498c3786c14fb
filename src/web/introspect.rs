//! OAuth 2.0 token introspection (RFC 7662) with a bounded cache
//! (docs/operations.md#authentication): a token's result is kept 300 seconds at the most,
//! never after the token expires, and concurrent requests with the same token wait for one
//! introspection. A failing or slow introspection server is an error, never access.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use serde::Deserialize;

/// How long an introspection result is kept at the most (as the reference's Oathkeeper).
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// What the introspection server said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// The token's subject (`sub`; empty when absent).
    pub subject: String,
    /// The granted scopes, separated by spaces.
    pub scope: String,
    /// When the token expires (`exp`, seconds since the epoch), if said.
    pub expires_at: Option<i64>,
}

#[derive(Deserialize)]
struct Response {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
}

/// Why a token could not be introspected.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    /// The request failed or timed out.
    #[error("the token introspection request failed: {0}")]
    Request(String),
    /// The server answered with another status than 200.
    #[error("the token introspection server answered {0}")]
    Status(u16),
    /// The answer is not an introspection response.
    #[error("invalid token introspection response: {0}")]
    Invalid(String),
}

/// Results expire after [`CACHE_TTL`], or when their token does if that is sooner.
struct ExpireWithToken;

impl Expiry<String, Arc<Introspection>> for ExpireWithToken {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Introspection>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let Some(exp) = value.expires_at else {
            return Some(CACHE_TTL);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let left = u64::try_from(exp).unwrap_or(0).saturating_sub(now);
        Some(CACHE_TTL.min(Duration::from_secs(left)))
    }
}

/// An introspection client with its cache.
#[derive(Clone)]
pub struct Introspector {
    client: reqwest::Client,
    url: String,
    cache: moka::future::Cache<String, Arc<Introspection>>,
}

impl Introspector {
    /// A client of the introspection endpoint `url`, whose requests time out after `timeout`,
    /// with a cache of `max_cost` bytes (about the size of the token, subject and scopes of
    /// each result).
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(url: &str, timeout: Duration, max_cost: u64) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let cache = moka::future::Cache::builder()
            .max_capacity(max_cost)
            .weigher(|token: &String, value: &Arc<Introspection>| {
                let bytes = token.len() + value.subject.len() + value.scope.len() + 64;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(ExpireWithToken)
            .build();
        Ok(Self {
            client,
            url: url.to_owned(),
            cache,
        })
    }

    /// What the server says about `token`, from the cache when it is there.
    ///
    /// # Errors
    ///
    /// When the server cannot be asked or gives no valid answer (nothing is cached then).
    pub async fn introspect(
        &self,
        token: &str,
    ) -> Result<Arc<Introspection>, Arc<IntrospectionError>> {
        let mut fetched = false;
        let result = self
            .cache
            .try_get_with(token.to_owned(), async {
                fetched = true;
                self.fetch(token).await.map(Arc::new)
            })
            .await;
        let outcome = match (&result, fetched) {
            (_, false) => "cached",
            (Ok(i), true) if i.active => "active",
            (Ok(_), true) => "inactive",
            (Err(_), true) => "error",
        };
        metrics::counter!("swpt_trade_token_introspections_total", "outcome" => outcome)
            .increment(1);
        result
    }

    async fn fetch(&self, token: &str) -> Result<Introspection, IntrospectionError> {
        let response = self
            .client
            .post(&self.url)
            .header("x-forwarded-proto", "https")
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|e| IntrospectionError::Request(without_url(&e)))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(IntrospectionError::Status(status.as_u16()));
        }
        let body: Response = response
            .json()
            .await
            .map_err(|e| IntrospectionError::Invalid(without_url(&e)))?;
        Ok(Introspection {
            active: body.active,
            subject: body.sub.unwrap_or_default(),
            scope: body.scope.unwrap_or_default(),
            expires_at: body.exp,
        })
    }
}

/// A reqwest error's text without its URL (which may hold credentials).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<introspection URL>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
