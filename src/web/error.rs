//! The admin API's one error envelope (docs/operations.md#admin-api): a JSON object with
//! `code` (the HTTP status), `status` (its reason phrase) and, for validation errors,
//! `errors` (location → field → messages), as the reference answers.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error response of the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ApiError {
    /// The HTTP status code.
    #[schema(format = Int32)]
    pub code: u16,
    /// Validation errors: location (`json`, `query`) → field → messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub errors: Option<serde_json::Value>,
    /// A human-readable explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP reason phrase (e.g. `Forbidden`).
    pub status: String,
}

impl ApiError {
    /// An error with `status` and nothing else.
    pub fn new(status: StatusCode) -> Self {
        Self {
            code: status.as_u16(),
            errors: None,
            message: None,
            status: status.canonical_reason().unwrap_or("Error").to_owned(),
        }
    }

    /// An error with `status` and a message.
    pub fn with_message(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::new(status)
        }
    }

    /// 400: the body is not JSON (`{"json": ["Invalid JSON body."]}`).
    pub fn invalid_json() -> Self {
        Self {
            errors: Some(serde_json::json!({"json": ["Invalid JSON body."]})),
            ..Self::new(StatusCode::BAD_REQUEST)
        }
    }

    /// 422 with `errors` (location → field → messages).
    pub fn unprocessable(errors: serde_json::Value) -> Self {
        Self {
            errors: Some(errors),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY)
        }
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND)
    }

    /// 500, with nothing of the cause (it is logged where it happens).
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The response, as a plain `HttpResponse`.
    pub fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code()).json(self);
        if self.code == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.status)?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

impl From<crate::db::Unavailable> for ApiError {
    fn from(e: crate::db::Unavailable) -> Self {
        tracing::error!("{e}");
        Self::new(StatusCode::SERVICE_UNAVAILABLE)
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        tracing::error!("A database query failed: {e}");
        Self::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_references() {
        let body = |e: ApiError| serde_json::to_string(&e).unwrap();
        assert_eq!(
            body(ApiError::new(StatusCode::FORBIDDEN)),
            r#"{"code":403,"status":"Forbidden"}"#
        );
        assert_eq!(
            body(ApiError::invalid_json()),
            r#"{"code":400,"errors":{"json":["Invalid JSON body."]},"status":"Bad Request"}"#
        );
        assert_eq!(
            body(ApiError::internal()),
            r#"{"code":500,"status":"Internal Server Error"}"#
        );
    }
}
