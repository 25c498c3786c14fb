//! Trading turns and their reports: `GET /trade/turns` and `GET /trade/turns/{turnId}`
//! (docs/operations.md#admin-api, docs/turns.md#turn-reports).

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::WebState;
use super::body::{self, FieldErrors};
use super::error::ApiError;
use crate::db::solver::reports::{self as db, TurnReport as ReportRow};
use crate::db::solver::turns::Turn as TurnRow;

/// Turns listed when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 20;
/// The most turns one request lists.
pub const MAX_LIMIT: i64 = 1000;

/// The figures of a solved turn.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnReport {
    /// When the solver committed the turn's results.
    pub solved_at: DateTime<Utc>,
    /// The matcher that solved the turn (`flow` or `greedy`).
    pub matcher: String,
    /// Currencies of the turn.
    pub currencies: i32,
    /// Currencies confirmed by their debtors.
    pub confirmed_currencies: i32,
    /// Currencies with a price: confirmed, and pegged to the base currency within reach.
    pub priced_currencies: i32,
    /// Sell offers.
    #[schema(format = Int64)]
    pub sell_offers: i64,
    /// The sell offers' value in base units (offers of currencies without a price count 0).
    pub sell_volume: f64,
    /// Buy offers.
    #[schema(format = Int64)]
    pub buy_offers: i64,
    /// The buy offers' value in base units.
    pub buy_volume: f64,
    /// The value of everything traded, in base units.
    pub traded_volume: f64,
    /// The largest value any matching could have traded (the LP bound), in base units.
    pub lp_bound: f64,
    /// Creditors that give or take something.
    #[schema(format = Int64)]
    pub participants: i64,
    /// Trading cycles that moved tokens, when known.
    #[schema(format = Int64)]
    pub cycles: Option<i64>,
    /// Milliseconds the solver engine took (pricing, matching, aggregation).
    pub solve_milliseconds: f64,
}

/// A trading turn.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    /// Always `Turn`.
    #[serde(rename = "type")]
    #[schema(example = "Turn")]
    pub type_: &'static str,
    /// The turn's ID.
    pub turn_id: i32,
    /// 1 gathering currencies, 2 gathering offers, 3 giving and taking, 4 done.
    pub phase: i16,
    /// `gatheringCurrencies`, `gatheringOffers`, `givingAndTaking` or `done`.
    pub phase_name: &'static str,
    /// When the turn started.
    pub started_at: DateTime<Utc>,
    /// When phase 1 or 2 ends (none in phases 3 and 4).
    pub phase_deadline: Option<DateTime<Utc>>,
    /// When phase 3 started.
    pub collection_started_at: Option<DateTime<Utc>>,
    /// The deadline of the turn's transfers.
    pub collection_deadline: Option<DateTime<Utc>>,
    /// The base currency's debtor info locator.
    pub base_debtor_info_locator: String,
    /// The base currency's debtor ID.
    #[schema(format = Int64)]
    pub base_debtor_id: i64,
    /// How far from the base a tradable currency may be pegged.
    pub max_distance_to_base: i16,
    /// The smallest amount that changes hands.
    #[schema(format = Int64)]
    pub min_trade_amount: i64,
    /// The turn's figures, once it is solved (by this implementation's solver).
    pub report: Option<TurnReport>,
}

/// Recent turns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnList {
    /// Always `TurnList`.
    #[serde(rename = "type")]
    #[schema(example = "TurnList")]
    pub type_: &'static str,
    /// The turns, newest first.
    pub items: Vec<Turn>,
}

fn phase_name(phase: i16) -> &'static str {
    match phase {
        1 => "gatheringCurrencies",
        2 => "gatheringOffers",
        3 => "givingAndTaking",
        4 => "done",
        _ => "unknown",
    }
}

fn turn(row: TurnRow, report: Option<ReportRow>) -> Turn {
    Turn {
        type_: "Turn",
        turn_id: row.turn_id,
        phase: row.phase,
        phase_name: phase_name(row.phase),
        started_at: row.started_at,
        phase_deadline: row.phase_deadline,
        collection_started_at: row.collection_started_at,
        collection_deadline: row.collection_deadline,
        base_debtor_info_locator: row.base_debtor_info_locator,
        base_debtor_id: row.base_debtor_id,
        max_distance_to_base: row.max_distance_to_base,
        min_trade_amount: row.min_trade_amount,
        report: report.map(|r| TurnReport {
            solved_at: r.solved_at,
            matcher: r.matcher,
            currencies: r.currencies,
            confirmed_currencies: r.confirmed_currencies,
            priced_currencies: r.priced_currencies,
            sell_offers: r.sell_offers,
            sell_volume: r.sell_volume,
            buy_offers: r.buy_offers,
            buy_volume: r.buy_volume,
            traded_volume: r.traded_volume,
            lp_bound: r.lp_bound,
            participants: r.participants,
            cycles: r.cycles,
            solve_milliseconds: r.solve_ms,
        }),
    }
}

/// Reads `limit` from a query string: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn parse_limit(query: &str) -> Result<i64, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut errors = FieldErrors::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "limit" {
            continue;
        }
        match body::lenient_integer(&serde_json::Value::String(value.into_owned())) {
            Ok(n) if (1..=i128::from(MAX_LIMIT)).contains(&n) => limit = n as i64,
            Ok(_) => errors.add(
                "limit",
                format!(
                    "Must be greater than or equal to 1 and less than or equal to {MAX_LIMIT}."
                ),
            ),
            Err(message) => errors.add("limit", message),
        }
    }
    errors.into_result("query")?;
    Ok(limit)
}

/// List recent trading turns.
///
/// The latest turns, newest first, with their phases, deadlines and, once solved, their
/// figures.
#[utoipa::path(
    tag = "turns",
    operation_id = "getTurns",
    params(("limit" = Option<i64>, Query, description = "How many turns (1 to 1000, default 20).", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "The turns.", body = TurnList),
        (status = 401, description = "No active token.", body = ApiError),
        (status = 403, description = "The token lacks the scope, or its subject is no administrator.", body = ApiError),
        (status = 422, description = "Invalid limit.", body = ApiError),
        (status = 503, description = "The database or the token introspection is unavailable.", body = ApiError),
    ),
    security(("oauth2" = ["access.readonly"])),
)]
#[get("/turns")]
pub async fn get_turns(
    state: web::Data<WebState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    turns(state, request).await
}

/// The turn list's response (also for `HEAD`).
pub async fn turns(
    state: web::Data<WebState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let limit = parse_limit(request.query_string())?;
    let mut conn = state.solver.get().await?;
    let rows = db::recent_turns(&mut conn, limit).await?;
    Ok(HttpResponse::Ok().json(TurnList {
        type_: "TurnList",
        items: rows.into_iter().map(|(t, r)| turn(t, r)).collect(),
    }))
}

/// Get a trading turn.
#[utoipa::path(
    tag = "turns",
    operation_id = "getTurn",
    params(("turnId" = String, Path, description = "The turn's ID", pattern = "^[0-9]{1,10}$")),
    responses(
        (status = 200, description = "The turn.", body = Turn),
        (status = 401, description = "No active token.", body = ApiError),
        (status = 403, description = "The token lacks the scope, or its subject is no administrator.", body = ApiError),
        (status = 404, description = "No such turn.", body = ApiError),
        (status = 503, description = "The database or the token introspection is unavailable.", body = ApiError),
    ),
    security(("oauth2" = ["access.readonly"])),
)]
#[get("/turns/{turnId}")]
pub async fn get_turn(
    state: web::Data<WebState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    one_turn(state, path).await
}

/// One turn's response (also for `HEAD`).
pub async fn one_turn(
    state: web::Data<WebState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let turn_id = body::parse_i32_path_id(&path).ok_or_else(ApiError::not_found)?;
    let mut conn = state.solver.get().await?;
    let (row, report) = db::turn_with_report(&mut conn, turn_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(turn(row, report)))
}
