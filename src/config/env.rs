//! Reading typed settings from the environment, with errors that name the variable.

use std::ffi::OsString;
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
    /// An error about the variable `var` holding `value`. Passwords of URLs in `value` and in
    /// `reason` are masked ([`super::mask_url`]), so no caller can forget to.
    pub fn new(var: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            value: super::mask_url(value),
            reason: super::mask_url(&reason.into()),
        }
    }
}

/// Where an [`EnvReader`] gets its values.
#[derive(Clone, Copy)]
enum Lookup<'a> {
    /// Values that are text already (tests, benchmarks).
    Text(&'a dyn Fn(&str) -> Option<String>),
    /// Values as the operating system has them, which may not be UTF-8.
    Os(&'a dyn Fn(&str) -> Option<OsString>),
}

/// Reads variables through a lookup function, so tests need not touch the process environment.
pub struct EnvReader<'a> {
    lookup: Lookup<'a>,
}

impl<'a> EnvReader<'a> {
    /// A reader over `lookup` (e.g. a map of test settings).
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup: Lookup::Text(lookup),
        }
    }

    /// A reader over `lookup` (e.g. `|k| std::env::var_os(k)`): a value that is not valid
    /// UTF-8 is an error naming the variable, not an unset variable.
    pub fn from_os(lookup: &'a dyn Fn(&str) -> Option<OsString>) -> Self {
        Self {
            lookup: Lookup::Os(lookup),
        }
    }

    /// The raw value of `var`, if set.
    pub fn raw(&self, var: &str) -> Result<Option<String>, ConfigError> {
        match self.lookup {
            Lookup::Text(f) => Ok(f(var)),
            Lookup::Os(f) => f(var)
                .map(|v| {
                    v.into_string()
                        .map_err(|v| ConfigError::new(var, &v.to_string_lossy(), "not valid UTF-8"))
                })
                .transpose(),
        }
    }

    /// Parses `var` with `f` if it is set, or returns `default`.
    pub fn parsed<T>(
        &self,
        var: &str,
        default: T,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.raw(var)? {
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
    pub fn string(&self, var: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.raw(var)?.unwrap_or_else(|| default.to_string()))
    }

    /// A boolean setting (`false`, `off`, `no` and empty are false).
    pub fn bool(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.raw(var)?.map_or(default, |v| parse::parse_bool(&v)))
    }

    /// A non-negative integer setting.
    pub fn count<T: TryFrom<i64>>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        self.parsed(var, default, parse::parse_count)
    }

    /// A non-negative integer setting that is at most `max` (a number of processes,
    /// threads, connections, a pool size…).
    pub fn count_at_most<T: TryFrom<i64>>(
        &self,
        var: &str,
        default: T,
        max: u64,
    ) -> Result<T, ConfigError> {
        self.parsed(var, default, |v| parse::parse_count_in(v, 0, max))
    }

    /// An integer setting that must be positive.
    pub fn positive<T: TryFrom<i64>>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        self.parsed(var, default, |v| match parse::parse_int(v)? {
            n if n > 0 => T::try_from(n).map_err(|_| "integer out of range".into()),
            _ => Err("must be a positive integer".into()),
        })
    }

    /// A positive integer setting that is at most `max`.
    pub fn positive_at_most<T: TryFrom<i64>>(
        &self,
        var: &str,
        default: T,
        max: u64,
    ) -> Result<T, ConfigError> {
        self.parsed(var, default, |v| parse::parse_count_in(v, 1, max))
    }

    /// A finite float setting.
    pub fn float(&self, var: &str, default: f64) -> Result<f64, ConfigError> {
        self.parsed(var, default, |v| parse::parse_float_min(v, f64::MIN))
    }

    /// A finite, non-negative float setting (a rate…).
    pub fn non_negative(&self, var: &str, default: f64) -> Result<f64, ConfigError> {
        self.parsed(var, default, |v| parse::parse_float_min(v, 0.0))
    }

    /// A non-negative number of days, at most [`super::MAX_DATE_OFFSET_DAYS`] (it is added
    /// to or subtracted from dates).
    pub fn days(&self, var: &str, default: f64) -> Result<f64, ConfigError> {
        self.parsed(var, default, |v| {
            parse::parse_days(v, super::MAX_DATE_OFFSET_DAYS)
        })
    }

    /// A number of seconds, written as a plain float.
    pub fn seconds(&self, var: &str, default_secs: f64) -> Result<Duration, ConfigError> {
        self.parsed(
            var,
            Duration::from_secs_f64(default_secs),
            parse::parse_seconds,
        )
    }

    /// A duration string such as `2.5h` (docs/configuration.md#durations).
    pub fn duration(&self, var: &str, default: &str) -> Result<Duration, ConfigError> {
        let fallback = parse::parse_duration(default).expect("valid default duration");
        self.parsed(var, fallback, parse::parse_duration)
    }

    /// A duration string that is added to or subtracted from dates: at most
    /// [`super::MAX_DATE_OFFSET_DAYS`] long.
    pub fn date_offset(&self, var: &str, default: &str) -> Result<Duration, ConfigError> {
        let fallback = parse::parse_duration(default).expect("valid default duration");
        self.parsed(var, fallback, |v| {
            parse::parse_duration_days(v, super::MAX_DATE_OFFSET_DAYS)
        })
    }
}
