//! `GET /trade/health/check/public`: always 200 (docs/operations.md#admin-api).

use actix_web::{HttpResponse, get};

/// The health check's body.
pub const HEALTHY: &str = "I am healthy.";

/// Return HTTP status code 200 if the server is healthy.
///
/// On success, the content type of the returned document will be `text/plain`.
#[utoipa::path(
    tag = "health",
    operation_id = "checkHealth",
    responses(
        (status = 200, description = "The server is healthy.", body = String, content_type = "text/plain",
         example = json!("I am healthy.")),
    ),
)]
#[get("/health/check/public")]
pub async fn check_health() -> HttpResponse {
    healthy().await
}

/// The health check's response (also for `HEAD`).
pub async fn healthy() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body(HEALTHY)
}
