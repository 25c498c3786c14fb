//! Collector accounts: `POST /trade/collectors/{debtorId}/activate` ensures that a currency has
//! a number of alive collector accounts, as the reference does; `GET
//! /trade/collectors/{debtorId}` lists them (docs/operations.md#admin-api).

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;

use super::WebState;
use super::body::{self, ActivateCollectorsRequest};
use super::error::ApiError;
use crate::collectors::{CollectorIds, NotEnoughCollectorIds};
use crate::db::retry::{RetryPolicy, Retryable, with_retries};
use crate::db::solver::collectors::{self as db, STATUS_DISABLED};
use crate::db::solver::reports;

/// The most collector accounts one request may add: they are inserted with one statement.
pub const MAX_NEW_ACCOUNTS: usize = 10_000;

/// Ensure a number of alive collector accounts.
///
/// Makes sure that the currency has at least `numberOfAccounts` collector accounts that are
/// not disabled, adding planned ones with the IDs every worker would pick. Repeating the
/// request changes nothing.
#[utoipa::path(
    tag = "collectors",
    operation_id = "activateCollectors",
    params(("debtorId" = String, Path, description = "The debtor's ID", pattern = r"^[0-9A-Za-z_=-]{1,64}$")),
    request_body(content = ActivateCollectorsRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "The accounts exist."),
        (status = 400, description = "The body is not JSON.", body = ApiError),
        (status = 401, description = "No active token.", body = ApiError),
        (status = 403, description = "The token lacks the scope, or its subject is no administrator.", body = ApiError),
        (status = 404, description = "No such debtor ID.", body = ApiError),
        (status = 422, description = "Invalid fields.", body = ApiError),
        (status = 500, description = "Not enough collector IDs are left.", body = ApiError),
        (status = 503, description = "The database or the token introspection is unavailable.", body = ApiError),
    ),
    security(("oauth2" = ["activate"])),
)]
#[post("/collectors/{debtorId}/activate")]
pub async fn activate_collectors(
    state: web::Data<WebState>,
    path: web::Path<String>,
    request: HttpRequest,
    payload: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let debtor_id = body::parse_u64_path_id(&path).ok_or_else(ApiError::not_found)?;
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let wanted = body::activate_collectors_request(content_type, &payload)?;
    if debtor_id == 0 {
        return Err(ApiError::internal());
    }
    ensure_accounts(&state, debtor_id, wanted).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((CONTENT_TYPE, "application/json"))
        .finish())
}

/// Why accounts could not be ensured.
#[derive(Debug, thiserror::Error)]
enum EnsureError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Unavailable(#[from] crate::db::Unavailable),
    #[error(transparent)]
    NotEnough(#[from] NotEnoughCollectorIds),
    #[error("more than {MAX_NEW_ACCOUNTS} collector accounts would be added")]
    TooMany,
}

impl Retryable for EnsureError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if crate::db::retry::is_retryable(e))
    }
}

async fn ensure_accounts(state: &WebState, debtor_id: i64, wanted: i64) -> Result<(), ApiError> {
    let ids = state.collector_ids;
    let result = with_retries(RetryPolicy::HANDLER, || async {
        let mut conn = state.solver.get().await?;
        conn.build_transaction()
            .repeatable_read()
            .run(async |conn: &mut AsyncPgConnection| {
                ensure_in_transaction(conn, ids, debtor_id, wanted).await
            })
            .await
    })
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(EnsureError::Db(e)) => Err(e.into()),
        Err(EnsureError::Unavailable(e)) => Err(e.into()),
        Err(EnsureError::NotEnough(e)) => {
            tracing::error!(debtor.id = debtor_id, "{e}");
            Err(ApiError::with_message(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            ))
        }
        Err(EnsureError::TooMany) => {
            let message = format!(
                "At most {MAX_NEW_ACCOUNTS} collector accounts can be added by one request."
            );
            Err(ApiError::unprocessable(
                serde_json::json!({"json": {"numberOfAccounts": [message]}}),
            ))
        }
    }
}

/// Adds the missing accounts in one transaction; the IDs are planned by
/// `CollectorIds::plan_up_to`, as the workers plan theirs.
async fn ensure_in_transaction(
    conn: &mut AsyncPgConnection,
    ids: CollectorIds,
    debtor_id: i64,
    wanted: i64,
) -> Result<(), EnsureError> {
    let accounts = db::collectors_of(conn, debtor_id).await?;
    let existing: Vec<i64> = accounts.iter().map(|&(id, _)| id).collect();
    let alive = accounts
        .iter()
        .filter(|&&(_, status)| status != STATUS_DISABLED)
        .count();
    let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
    if alive >= wanted {
        return Ok(());
    }
    if wanted - alive > MAX_NEW_ACCOUNTS {
        // The reference's range check comes first (500), then our limit (422).
        ids.check_capacity(existing.len() - alive, wanted)?;
        return Err(EnsureError::TooMany);
    }
    let new = ids.plan_up_to(debtor_id, &existing, alive, wanted)?;
    db::insert_pristine(conn, debtor_id, &new, Utc::now()).await?;
    Ok(())
}

/// A collector account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectorAccount {
    /// The collector's creditor ID.
    #[schema(format = Int64)]
    pub collector_id: i64,
    /// The account ID given by the accounting authority (empty until it is created).
    pub account_id: String,
    /// 0 planned, 1 creation requested, 2 active, 3 disabled.
    pub status: i16,
    /// `pristine`, `requested`, `active` or `disabled`.
    pub status_name: &'static str,
    /// When the status last changed.
    pub latest_status_change_at: DateTime<Utc>,
}

/// The collector accounts of a currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectorAccounts {
    /// Always `CollectorAccounts`.
    #[serde(rename = "type")]
    #[schema(example = "CollectorAccounts")]
    pub type_: &'static str,
    /// The currency's debtor ID (as a signed 64-bit number).
    #[schema(format = Int64)]
    pub debtor_id: i64,
    /// Accounts that are not disabled.
    pub alive: usize,
    /// Every account of the currency, by collector ID.
    pub accounts: Vec<CollectorAccount>,
}

fn status_name(status: i16) -> &'static str {
    match status {
        0 => "pristine",
        1 => "requested",
        2 => "active",
        3 => "disabled",
        _ => "unknown",
    }
}

/// List the collector accounts of a currency.
#[utoipa::path(
    tag = "collectors",
    operation_id = "getCollectorAccounts",
    params(("debtorId" = String, Path, description = "The debtor's ID", pattern = r"^[0-9A-Za-z_=-]{1,64}$")),
    responses(
        (status = 200, description = "The accounts (none when the currency has none).", body = CollectorAccounts),
        (status = 401, description = "No active token.", body = ApiError),
        (status = 403, description = "The token lacks the scope, or its subject is no administrator.", body = ApiError),
        (status = 404, description = "No such debtor ID.", body = ApiError),
        (status = 503, description = "The database or the token introspection is unavailable.", body = ApiError),
    ),
    security(("oauth2" = ["access.readonly"])),
)]
#[get("/collectors/{debtorId}")]
pub async fn get_collector_accounts(
    state: web::Data<WebState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    collector_accounts(state, path).await
}

/// The collector accounts' response (also for `HEAD`).
pub async fn collector_accounts(
    state: web::Data<WebState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let debtor_id = body::parse_u64_path_id(&path).ok_or_else(ApiError::not_found)?;
    let mut conn = state.solver.get().await?;
    let rows = reports::collector_accounts(&mut conn, debtor_id).await?;
    let accounts: Vec<CollectorAccount> = rows
        .into_iter()
        .map(|r| CollectorAccount {
            collector_id: r.collector_id,
            account_id: r.account_id,
            status: r.status,
            status_name: status_name(r.status),
            latest_status_change_at: r.latest_status_change_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(CollectorAccounts {
        type_: "CollectorAccounts",
        debtor_id,
        alive: accounts
            .iter()
            .filter(|a| a.status != STATUS_DISABLED)
            .count(),
        accounts,
    }))
}
