//! Logging to stdout in the reference's two formats (operations.md §8), with the command's
//! name on every line.
//!
//! Text: `2024-06-01 02:00:00+0000:INFO:swpt_trade.db.migrate:[configure] message key=value`.
//! JSON: one object per line with `asctime`, `levelname`, `name`, `message`, `command`, then
//! the event's own fields.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written (`APP_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `asctime:LEVEL:name:message`.
    Text,
    /// One JSON object per line.
    Json,
}

/// The logging settings, read before anything else so that later errors can be logged.
#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    /// The level of this service's own messages (`APP_LOG_LEVEL`).
    pub level: LevelFilter,
    /// `APP_LOG_FORMAT`.
    pub format: LogFormat,
}

impl LogSettings {
    /// Reads `APP_LOG_LEVEL` (default `warning`) and `APP_LOG_FORMAT` (default `text`).
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let level_raw = lookup("APP_LOG_LEVEL").unwrap_or_else(|| "warning".into());
        let level = match level_raw.to_lowercase().as_str() {
            "debug" => LevelFilter::DEBUG,
            "info" => LevelFilter::INFO,
            "warning" | "warn" => LevelFilter::WARN,
            "error" | "critical" => LevelFilter::ERROR,
            _ => {
                return Err(ConfigError::new(
                    "APP_LOG_LEVEL",
                    &level_raw,
                    "Unknown level",
                ));
            }
        };
        let format_raw = lookup("APP_LOG_FORMAT").unwrap_or_else(|| "text".into());
        let format = match format_raw.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                return Err(ConfigError::new(
                    "APP_LOG_FORMAT",
                    &format_raw,
                    "invalid log format (expected text or json)",
                ));
            }
        };
        Ok(Self { level, format })
    }
}

/// Installs the global subscriber. Third-party crates log warnings and above only (or the
/// service's level, when that is higher), as in the reference.
pub fn init(settings: LogSettings, command: &'static str) {
    let others = settings.level.min(LevelFilter::WARN);
    let filter = Targets::new()
        .with_default(others)
        .with_target("swpt_trade", settings.level);
    let layer = tracing_subscriber::fmt::layer()
        .event_format(LineFormat {
            command,
            format: settings.format,
        })
        .with_writer(std::io::stdout);
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

/// Formats one event as a line of text or JSON.
struct LineFormat {
    command: &'static str,
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut fields = FieldCollector::default();
        event.record(&mut fields);
        let name = meta.target().replace("::", ".");
        let level = level_name(*meta.level());
        let now = chrono::Utc::now();
        match self.format {
            LogFormat::Text => {
                let asctime = now.format("%Y-%m-%d %H:%M:%S%z");
                write!(
                    writer,
                    "{asctime}:{level}:{name}:[{}] {}",
                    self.command, fields.message
                )?;
                for (key, value) in &fields.rest {
                    match value {
                        serde_json::Value::String(s) => write!(writer, " {key}={s}")?,
                        other => write!(writer, " {key}={other}")?,
                    }
                }
                writeln!(writer)
            }
            LogFormat::Json => {
                let mut obj = serde_json::Map::new();
                obj.insert(
                    "asctime".into(),
                    now.format("%Y-%m-%dT%H:%M:%S%z").to_string().into(),
                );
                obj.insert("levelname".into(), level.into());
                obj.insert("name".into(), name.into());
                obj.insert("message".into(), fields.message.into());
                obj.insert("command".into(), self.command.into());
                obj.extend(fields.rest);
                writeln!(writer, "{}", serde_json::Value::Object(obj))
            }
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// Collects an event's message and its other fields.
#[derive(Default)]
struct FieldCollector {
    message: String,
    rest: Vec<(String, serde_json::Value)>,
}

impl Visit for FieldCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_value(field, text.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_value(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_value(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_value(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_value(field, value.into());
    }
}

impl FieldCollector {
    fn record_value(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.rest.push((field.name().to_string(), value));
        }
    }
}
