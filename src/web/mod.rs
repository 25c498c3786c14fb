//! The admin API (`webserver`): actix-web on `WEBSERVER_PORT`, every path under `/trade/`
//! (docs/operations.md#admin-api).
//!
//! A request goes through CORS (with `APP_ENABLE_CORS`), the request counter, then the access
//! check of [`auth`] (bearer tokens introspected by [`introspect`], or a trusted proxy's
//! header), then its handler. Errors are JSON ([`error`]); request bodies are read as the
//! reference reads them ([`body`]).

pub mod auth;
pub mod body;
pub mod collectors;
pub mod error;
pub mod health;
pub mod introspect;
pub mod openapi;
pub mod turns;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Condition, ErrorHandlerResponse, ErrorHandlers, Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, Resource, web};
use utoipa_actix_web::AppExt as _;
use utoipa_swagger_ui::SwaggerUi;

use self::auth::{Auth, Authenticator, SubjectPatterns, USER_ID_HEADER};
use self::error::ApiError;
use crate::collectors::CollectorIds;
use crate::config::Config;
use crate::db::{PoolSettings, SolverPool};

/// Where Swagger UI is served.
pub const SWAGGER_UI_PATH: &str = "/trade/.docs/swagger-ui/";
/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/trade/.docs/openapi.json";

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The solver database.
    pub solver: SolverPool,
    /// `MIN_COLLECTOR_ID`..=`MAX_COLLECTOR_ID`.
    pub collector_ids: CollectorIds,
}

/// The documented routes under `/trade/`, each with a fallback that answers `OPTIONS` with
/// `Allow`, `HEAD` like `GET`, and any other method with 405 (and no `Allow`, as the
/// reference).
pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(
        utoipa_actix_web::scope("/trade")
            .service(health::check_health)
            .service(collectors::activate_collectors)
            .service(collectors::get_collector_accounts)
            .service(turns::get_turns)
            .service(turns::get_turn)
            .map(|scope| {
                scope
                    .service(
                        fallback("/health/check/public", "GET, HEAD, OPTIONS")
                            .route(web::head().to(health::healthy)),
                    )
                    .service(fallback("/collectors/{debtorId}/activate", "POST, OPTIONS"))
                    .service(
                        fallback("/collectors/{debtorId}", "GET, HEAD, OPTIONS")
                            .route(web::head().to(collectors::collector_accounts)),
                    )
                    .service(
                        fallback("/turns", "GET, HEAD, OPTIONS")
                            .route(web::head().to(turns::turns)),
                    )
                    .service(
                        fallback("/turns/{turnId}", "GET, HEAD, OPTIONS")
                            .route(web::head().to(turns::one_turn)),
                    )
                    .default_service(web::to(not_found))
            }),
    );
}

/// A resource at `path` that answers `OPTIONS` with `allow` and other methods with 405.
fn fallback(path: &str, allow: &'static str) -> Resource {
    web::resource(path)
        .route(web::method(Method::OPTIONS).to(move || async move {
            HttpResponse::Ok()
                .insert_header((header::ALLOW, allow))
                .content_type("text/html; charset=utf-8")
                .finish()
        }))
        .default_service(web::to(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED).response()
        }))
}

async fn not_found() -> HttpResponse {
    ApiError::not_found().response()
}

async fn to_swagger_ui() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, SWAGGER_UI_PATH))
        .finish()
}

/// Checks every request under `/trade/` against its access rule ([`auth`]).
async fn authorize(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if request.path().starts_with("/trade/") {
        let rule = auth::rule(request.method(), request.path());
        let text = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (authorization, user_id) = (text("authorization"), text(USER_ID_HEADER));
        let checker = request
            .app_data::<web::Data<Auth>>()
            .expect("the app has its Auth")
            .clone();
        if let Err(e) = checker
            .check(rule, authorization.as_deref(), user_id.as_deref())
            .await
        {
            return Ok(request.into_response(e.response()).map_into_right_body());
        }
    }
    Ok(next.call(request).await?.map_into_left_body())
}

/// Counts responses by status code.
async fn count_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(request).await?;
    let status = response.status().as_u16().to_string();
    metrics::counter!("swpt_trade_http_requests_total", "status" => status).increment(1);
    Ok(response)
}

/// Makes every error response the JSON envelope, also those that actix-web gives by itself
/// (a body over the size limit, a path that cannot be decoded…).
fn json_errors<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let (request, plain) = response.into_parts();
    let json = ApiError::new(plain.status()).response();
    let response = ServiceResponse::new(request, json).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}

/// CORS as the reference's `APP_ENABLE_CORS`: any origin, a day's preflight cache, `Location`
/// readable.
fn cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allow_any_method()
        .allow_any_header()
        .expose_headers([header::LOCATION])
        .max_age(86_400)
}

/// How callers are authenticated, from the settings.
///
/// # Errors
///
/// Without `OAUTH2_INTROSPECT_URL` (unless `APP_TRUST_USER_ID_HEADER`), with both, or with a
/// subject pattern that is no regular expression.
pub fn auth_from_config(config: &Config) -> anyhow::Result<Auth> {
    let web = &config.web;
    let subjects = SubjectPatterns::new(web)?;
    let authenticator = match (&web.oauth2_introspect_url, web.trust_user_id_header) {
        (Some(_), true) => anyhow::bail!(
            "OAUTH2_INTROSPECT_URL is set and APP_TRUST_USER_ID_HEADER is true: choose one way \
             to authenticate callers"
        ),
        (None, false) => anyhow::bail!(
            "OAUTH2_INTROSPECT_URL is not set: the webserver cannot check tokens (set \
             APP_TRUST_USER_ID_HEADER=true only if a trusted proxy in front checks them and \
             sets X-Swpt-User-Id)"
        ),
        (None, true) => Authenticator::TrustedHeader,
        (Some(url), false) => Authenticator::Introspection(introspect::Introspector::new(
            url,
            web.introspection_timeout,
            web.token_cache_max_cost,
        )?),
    };
    Ok(Auth {
        authenticator,
        subjects,
    })
}

/// Runs the webserver until SIGTERM, SIGINT or SIGHUP, then finishes the requests in hand
/// within `APP_SHUTDOWN_TIMEOUT`.
///
/// The server has `WEBSERVER_PROCESSES × WEBSERVER_THREADS` workers: each is a thread with
/// its own event loop that serves many requests at once, so the product only sets how many
/// cores the server may use.
///
/// # Errors
///
/// A setting that does not allow the server to start, or a port that cannot be bound.
pub async fn run(config: Config, command: &str) -> anyhow::Result<()> {
    let auth = web::Data::new(auth_from_config(&config)?);
    let pool_size = config
        .db
        .solver_pool_size
        .unwrap_or(config.db.engine_pool_size);
    let solver = SolverPool::build(
        config.solver_url()?,
        PoolSettings::from_config(&config, pool_size),
        command,
    )?;
    let state = web::Data::new(WebState {
        solver,
        collector_ids: CollectorIds::from_config(&config),
    });
    crate::prometheus::install();
    let web_config = &config.web;
    let doc = openapi::document(&web_config.api_title, &web_config.api_version);
    let enable_cors = web_config.enable_cors;
    let workers = (web_config.processes as usize) * (web_config.threads as usize);
    let stop = crate::shutdown::on_signals();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(auth.clone())
            .wrap(from_fn(authorize))
            .wrap(ErrorHandlers::new().default_handler(json_errors))
            .wrap(from_fn(count_requests))
            .wrap(Condition::new(enable_cors, cors()))
            .service(
                SwaggerUi::new(format!("{SWAGGER_UI_PATH}{{_:.*}}")).url(OPENAPI_PATH, doc.clone()),
            )
            .route("/trade/.docs", web::get().to(to_swagger_ui))
            .route("/trade/.docs/", web::get().to(to_swagger_ui))
            .route(
                "/metrics",
                web::get().to(crate::prometheus::metrics_endpoint),
            )
            .into_utoipa_app()
            .configure(routes)
            .into_app()
            .default_service(web::to(not_found))
    })
    .workers(workers.max(1))
    .disable_signals()
    .shutdown_signal(stop.cancelled_owned())
    .shutdown_timeout(config.processes.shutdown_timeout.as_secs().max(1))
    .bind((web_config.listen_address, web_config.port))
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}:{}: {e}",
            web_config.listen_address,
            web_config.port
        )
    })?
    .run();
    tracing::info!(
        "The admin API listens on port {} with {workers} workers.",
        web_config.port
    );
    server.await?;
    Ok(())
}
