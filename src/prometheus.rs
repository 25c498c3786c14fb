//! Metrics in Prometheus's text format (docs/operations.md#metrics). Code counts events with
//! one-line `metrics::counter!` calls where they happen; a process that shows its metrics
//! installs the recorder with [`install`] first (without it, counting does nothing). The
//! webserver serves them at `/metrics`; `solver` and `worker` on `APP_METRICS_PORT`, when set.

use std::sync::OnceLock;

use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::jobs::{OnFailure, Runner};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The content type of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of the solve-time histogram, in seconds.
const SOLVE_SECONDS_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Installs the process's recorder (once; later calls return the same handle).
///
/// # Panics
///
/// When another recorder was installed by other means.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("swpt_trade_turn_solve_seconds".into()),
                &SOLVE_SECONDS_BUCKETS,
            )
            .expect("non-empty buckets")
            .install_recorder()
            .expect("one metrics recorder per process");
        describe();
        handle
    })
}

/// Every metric of the service (`deploy/grafana/swpt-trade-dashboard.json` uses only these).
pub const METRIC_NAMES: [&str; 10] = [
    "swpt_trade_messages_consumed_total",
    "swpt_trade_messages_handled_total",
    "swpt_trade_messages_dead_lettered_total",
    "swpt_trade_outbox_flushed_total",
    "swpt_trade_turn_phase_changes_total",
    "swpt_trade_turn_solve_seconds",
    "swpt_trade_debtor_info_fetches_total",
    "swpt_trade_transfer_attempts_total",
    "swpt_trade_http_requests_total",
    "swpt_trade_token_introspections_total",
];

/// The HELP lines of every metric.
fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(
        "swpt_trade_messages_consumed_total",
        "SMP messages received from RabbitMQ, by type (invalid ones as \"invalid\")."
    );
    describe_counter!(
        "swpt_trade_messages_handled_total",
        "SMP messages handled and acknowledged, by type."
    );
    describe_counter!(
        "swpt_trade_messages_dead_lettered_total",
        "SMP messages rejected to the dead-letter queue, by type."
    );
    describe_counter!(
        "swpt_trade_outbox_flushed_total",
        "Outbox rows published and deleted, by signal kind."
    );
    describe_counter!(
        "swpt_trade_turn_phase_changes_total",
        "Trading turns that entered a phase, by phase."
    );
    describe_histogram!(
        "swpt_trade_turn_solve_seconds",
        "Time of the solver engine per solved turn."
    );
    describe_counter!(
        "swpt_trade_debtor_info_fetches_total",
        "Debtor info document fetches, by outcome."
    );
    describe_counter!(
        "swpt_trade_transfer_attempts_total",
        "Transfer attempts' outcomes (prepared, rejected, finalized…)."
    );
    describe_counter!(
        "swpt_trade_http_requests_total",
        "Admin API requests, by status code."
    );
    describe_counter!(
        "swpt_trade_token_introspections_total",
        "Token checks of the admin API: cached, or introspected as active, inactive or error."
    );
}

/// The current metrics in Prometheus's text format (empty without a recorder).
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// The `/metrics` response.
pub async fn metrics_endpoint() -> HttpResponse {
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(render())
}

/// When `port` is set: installs the recorder and serves `/metrics` on `0.0.0.0:port` until the
/// runner stops (a task of the runner, restarted after a failure such as a busy port).
pub fn spawn_server(runner: &Runner, port: Option<u16>) {
    let Some(port) = port else { return };
    install();
    runner.spawn_service("metrics".into(), OnFailure::Restart, move |stop| {
        serve(port, stop)
    });
}

async fn serve(port: u16, stop: CancellationToken) -> anyhow::Result<()> {
    let server = HttpServer::new(|| App::new().route("/metrics", web::get().to(metrics_endpoint)))
        .workers(1)
        .disable_signals()
        .shutdown_signal(stop.cancelled_owned())
        .bind(("0.0.0.0", port))
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on port {port}: {e}"))?
        .run();
    tracing::info!("Serving metrics on port {port}.");
    server.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::METRIC_NAMES;

    #[test]
    fn the_dashboard_shows_only_metrics_that_exist() {
        let text = include_str!("../deploy/grafana/swpt-trade-dashboard.json");
        let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut shown = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let names = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("swpt_trade_"));
                for name in names {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .unwrap_or(name);
                    assert!(METRIC_NAMES.contains(&base), "{name} in {expr}");
                    shown += 1;
                }
            }
        }
        // Every metric has a panel.
        for name in METRIC_NAMES {
            assert!(text.contains(name), "{name} has no panel");
        }
        assert!(shown >= METRIC_NAMES.len());
    }
}
