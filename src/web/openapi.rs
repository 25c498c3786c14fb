//! The OpenAPI 3.1 document, generated from the handlers' annotations and types
//! (docs/operations.md#openapi-document). `tests/integration/web_openapi.rs` compares it
//! with the checked-in `docs/openapi.json`.

use actix_web::App;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt as _;

use super::error::ApiError;

/// The parts of the document that no handler gives.
#[derive(OpenApi)]
#[openapi(
    info(description = "Admin API for the Swaptacular service that\nperforms circular trades between creditors.\n"),
    servers((url = "/")),
    components(schemas(ApiError)),
    modifiers(&OAuth2Scheme),
    tags(
        (name = "collectors", description = "**Manage collector accounts.**"),
        (name = "health", description = "**Check health.** These are public endpoints\nfor checking server's health status.\n"),
        (name = "turns", description = "**View trading turns** and the figures of solved turns."),
    ),
)]
struct Base;

/// The `oauth2` security scheme with the reference's scopes (clients get tokens with the
/// client-credentials flow of their authorization server).
struct OAuth2Scheme;

impl Modify for OAuth2Scheme {
    fn modify(&self, doc: &mut Document) {
        let scopes = Scopes::from_iter([
            ("access.readonly", "read-only access"),
            ("access", "read-write access"),
            ("activate", "activate new creditors"),
            ("deactivate", "deactivate existing creditors"),
        ]);
        let flow =
            ClientCredentials::with_refresh_url("$OAUTH2_TOKEN_URL", scopes, "$OAUTH2_REFRESH_URL");
        let mut oauth2 = OAuth2::new([Flow::ClientCredentials(flow)]);
        oauth2.description =
            Some("This API uses OAuth 2. [More info](https://oauth.net/2/).".into());
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("oauth2", SecurityScheme::OAuth2(oauth2));
    }
}

/// The document, with `title` and `version` (`API_TITLE`, `API_VERSION`).
pub fn document(title: &str, version: &str) -> Document {
    let mut base = Base::openapi();
    base.info.title = title.to_owned();
    base.info.version = version.to_owned();
    base.info.license = None;
    base.info.contact = None;
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(base)
        .configure(super::routes)
        .split_for_parts();
    doc
}
