//! Logging to stdout in the reference's two formats (docs/operations.md#logging), with the
//! command's name on every line.
//!
//! Text: `2024-06-01 02:00:00+0000:INFO:swpt_trade.db.migrate:[configure] message key=value`.
//! JSON: one object per line with `asctime`, `levelname`, `name`, `message`, `command`, then
//! the event's own fields.

use std::borrow::Cow;
use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, EnvReader, mask_urls_in_text};

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
    /// Reads the settings from the process environment; a value that is not valid UTF-8 is
    /// an error naming its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let lookup = |k: &str| std::env::var_os(k);
        Self::from_reader(&EnvReader::from_os(&lookup))
    }

    /// Reads the settings through `lookup`.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_reader(&EnvReader::new(lookup))
    }

    /// Reads `APP_LOG_LEVEL` (default `warning`) and `APP_LOG_FORMAT` (default `text`).
    pub fn from_reader(env: &EnvReader<'_>) -> Result<Self, ConfigError> {
        let level_raw = env.string("APP_LOG_LEVEL", "warning")?;
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
        let format_raw = env.string("APP_LOG_FORMAT", "text")?;
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
    init_to(settings, command, Output::Stdout);
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Standard output (the service's commands, as the reference).
    Stdout,
    /// Standard error (commands whose standard output is their result, e.g. `solve_offline`).
    Stderr,
}

/// Installs the logger, writing to `output`.
pub fn init_to(settings: LogSettings, command: &'static str, output: Output) {
    let others = settings.level.min(LevelFilter::WARN);
    let filter = Targets::new()
        .with_default(others)
        .with_target("swpt_trade", settings.level);
    let layer = tracing_subscriber::fmt::layer()
        .event_format(LineFormat {
            command,
            format: settings.format,
        })
        .with_writer(move || -> Box<dyn std::io::Write> {
            match output {
                Output::Stdout => Box::new(std::io::stdout()),
                Output::Stderr => Box::new(std::io::stderr()),
            }
        });
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
        format_line(
            &mut writer,
            self.format,
            chrono::Utc::now(),
            (level, &name, self.command),
            fields,
        )
    }
}

/// Writes one log line. Text from outside (a message type, a queue name, an error…) can reach
/// the message and the field values, so both are cleaned here, where no call site can
/// forget it: passwords of URLs are masked, and in the text format control characters are
/// escaped so that one event is always one line (the JSON encoder escapes them itself).
fn format_line(
    writer: &mut impl std::fmt::Write,
    format: LogFormat,
    now: chrono::DateTime<chrono::Utc>,
    (level, name, command): (&str, &str, &str),
    fields: FieldCollector,
) -> std::fmt::Result {
    match format {
        LogFormat::Text => {
            let asctime = now.format("%Y-%m-%d %H:%M:%S%z");
            let message = escape_controls(&mask_urls_in_text(&fields.message)).into_owned();
            write!(writer, "{asctime}:{level}:{name}:[{command}] {message}")?;
            for (key, value) in &fields.rest {
                let key = escape_controls(key);
                match value {
                    serde_json::Value::String(s) => {
                        write!(writer, " {key}={}", escape_controls(&mask_urls_in_text(s)))?;
                    }
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
            obj.insert(
                "message".into(),
                mask_urls_in_text(&fields.message).into_owned().into(),
            );
            obj.insert("command".into(), command.into());
            for (key, value) in fields.rest {
                let value = match value {
                    serde_json::Value::String(s) => mask_urls_in_text(&s).into_owned().into(),
                    other => other,
                };
                obj.insert(key, value);
            }
            let line = serde_json::Value::Object(obj).to_string();
            writeln!(writer, "{}", escape_json_controls(&line))
        }
    }
}

/// serde_json escapes the C0 controls but leaves DEL, the C1 controls (NEL…) and U+2028/U+2029
/// raw, which some readers take for line breaks. Raw, they can only stand inside a JSON
/// string, where `\uXXXX` means the same.
fn escape_json_controls(line: &str) -> Cow<'_, str> {
    if !line.chars().any(is_unsafe_in_line) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if is_unsafe_in_line(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` must not appear raw in a text log line: C0 and C1 control characters
/// (newline, carriage return, tab, escape, DEL, NEL…) and the Unicode line and paragraph
/// separators.
fn is_unsafe_in_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Escapes control characters as `\n`, `\r`, `\t` or `\u{..}`, so that a value cannot end
/// the line or forge another one.
fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_in_line) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_in_line(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A shared buffer that the formatter writes to.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// What `events` log in `format`.
    fn logged(format: LogFormat, events: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(LineFormat {
                command: "worker",
                format,
            })
            .with_writer(buffer.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), events);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// A message type that tries to forge a second log line.
    const FORGED: &str = "Foo\n2024-06-01 02:00:00+0000:ERROR:swpt_trade.x:[worker] forged";
    /// Every other kind of character that must not be raw in a line.
    const CONTROLS: &str = "a\tb\rc\u{1b}[31md\u{0}e\u{7f}f\u{85}g\u{9b}h\u{2028}i\u{2029}j";

    fn events() {
        tracing::warn!(message_type = FORGED, "Unknown message type {FORGED}");
        tracing::warn!(r#type = %FORGED, queue = ?CONTROLS, "{CONTROLS}");
        tracing::error!(
            url = "postgresql://alice:S3cret@db/x",
            count = 3,
            "cannot connect to amqp://bob:pa55@rabbit/: refused"
        );
    }

    #[test]
    fn text_lines_escape_control_characters() {
        let out = logged(LogFormat::Text, events);
        let lines: Vec<&str> = out.split_terminator('\n').collect();
        assert_eq!(lines.len(), 3, "{out}");
        for line in &lines {
            assert!(!line.chars().any(is_unsafe_in_line), "{line:?}");
        }
        let escaped_forgery = "Foo\\n2024-06-01 02:00:00+0000:ERROR:swpt_trade.x:[worker] forged";
        assert!(
            lines[0].ends_with(&format!(
                ":WARNING:swpt_trade.telemetry.tests:[worker] Unknown message type \
                 {escaped_forgery} message_type={escaped_forgery}"
            )),
            "{}",
            lines[0]
        );
        let escaped_controls =
            "a\\tb\\rc\\u{1b}[31md\\u{0}e\\u{7f}f\\u{85}g\\u{9b}h\\u{2028}i\\u{2029}j";
        assert!(
            lines[1].contains(&format!(
                "[worker] {escaped_controls} type={escaped_forgery} queue="
            )),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with(
                "[worker] cannot connect to amqp://bob:***@rabbit/: refused \
                 url=postgresql://alice:***@db/x count=3"
            ),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let out = logged(LogFormat::Json, events);
        let lines: Vec<&str> = out.split_terminator('\n').collect();
        assert_eq!(lines.len(), 3, "{out}");
        for line in &lines {
            assert!(!line.chars().any(is_unsafe_in_line), "{line:?}");
        }
        let records: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records[0]["message_type"], FORGED);
        assert_eq!(
            records[0]["message"],
            format!("Unknown message type {FORGED}")
        );
        assert_eq!(records[1]["message"], CONTROLS);
        assert_eq!(records[1]["type"], FORGED);
        assert_eq!(
            records[2]["message"],
            "cannot connect to amqp://bob:***@rabbit/: refused"
        );
        assert_eq!(records[2]["url"], "postgresql://alice:***@db/x");
        assert_eq!(records[2]["count"], 3);
        assert_eq!(records[2]["command"], "worker");
    }

    #[test]
    fn escaping_leaves_ordinary_text_alone() {
        assert!(matches!(
            escape_controls("naïve ünïcödé \\n \"quoted\""),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_controls("a\nb"), "a\\nb");
    }
}
