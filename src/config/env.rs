//! Reading typed settings from the environment, with errors that name the variable.

use std::time::Duration;

use super::parse;

/// A setting whose value could not be used; its message names the variable and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for {var}: {value:?} ({reason})")]
pub struct ConfigError {
    /// The environment variable.
    pub var: String,
    /// The value it had.
    pub value: String,
    /// Why the value was refused.
    pub reason: String,
}

impl ConfigError {
    /// An error about the variable `var` holding `value`.
    pub fn new(var: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Reads variables through a lookup function, so tests need not touch the process environment.
pub struct EnvReader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> EnvReader<'a> {
    /// A reader over `lookup` (e.g. `|k| std::env::var(k).ok()`).
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The raw value of `var`, if set.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
    }

    /// Parses `var` with `f` if it is set, or returns `default`.
    pub fn parsed<T>(
        &self,
        var: &str,
        default: T,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.raw(var) {
            Some(v) => f(&v).map_err(|reason| ConfigError::new(var, &v, reason)),
            None => Ok(default),
        }
    }

    /// Parses `var` with `f` if it is set.
    pub fn optional<T>(
        &self,
        var: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.parsed(var, None, |v| f(v).map(Some))
    }

    /// A string setting, taken verbatim.
    pub fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_string())
    }

    /// A boolean setting (`false`, `off`, `no` and empty are false).
    pub fn bool(&self, var: &str, default: bool) -> bool {
        self.raw(var).map_or(default, |v| parse::parse_bool(&v))
    }

    /// A non-negative integer setting.
    pub fn count<T: TryFrom<i64>>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        self.parsed(var, default, parse::parse_count)
    }

    /// An integer setting that must be positive.
    pub fn positive<T: TryFrom<i64>>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        self.parsed(var, default, |v| match parse::parse_int(v)? {
            n if n > 0 => T::try_from(n).map_err(|_| "integer out of range".into()),
            _ => Err("must be a positive integer".into()),
        })
    }

    /// A finite float setting.
    pub fn float(&self, var: &str, default: f64) -> Result<f64, ConfigError> {
        self.parsed(var, default, |v| parse::parse_float_min(v, f64::MIN))
    }

    /// A finite, non-negative float setting (a number of days, a rate…).
    pub fn non_negative(&self, var: &str, default: f64) -> Result<f64, ConfigError> {
        self.parsed(var, default, |v| parse::parse_float_min(v, 0.0))
    }

    /// A number of seconds, written as a plain float.
    pub fn seconds(&self, var: &str, default_secs: f64) -> Result<Duration, ConfigError> {
        self.parsed(
            var,
            Duration::from_secs_f64(default_secs),
            parse::parse_seconds,
        )
    }

    /// A duration string such as `2.5h` (operations.md §4.2).
    pub fn duration(&self, var: &str, default: &str) -> Result<Duration, ConfigError> {
        let fallback = parse::parse_duration(default).expect("valid default duration");
        self.parsed(var, fallback, parse::parse_duration)
    }
}
