//! The rules of transfer attempts (see `docs/turns.md#transfer-attempts`): a collector's
//! transfer to another collector ("sending") or to a buyer ("dispatching"), tried until the
//! accounting authority commits it, with back-off after failures. Pure: the handlers load an
//! attempt, apply these rules to it, and store it with the messages the rules ask for.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::demurrage::demurrage;

/// Added to the demurrage period of an attempt, for the clocks of the worker and the
/// accounting authority that may differ.
pub const CLOCK_PRECISION_SAFETY_MARGIN: TimeDelta = TimeDelta::minutes(10);

/// Added to the latest interest-rate change of the collector account: an interest rate that
/// has not changed for that long is the one the accounting authority applies.
pub const FINAL_INTEREST_RATE_TOLERANCE: TimeDelta = TimeDelta::seconds(2);

/// Why the last attempt failed (`transfer_attempt.failure_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum FailureCode {
    /// A status code without a retry rule (and the recipient changed after a failure).
    Unspecified = 0,
    /// `TIMEOUT`.
    Timeout = 1,
    /// `NEWER_INTEREST_RATE`: the interest rate changed after the attempt's final rate.
    NewerInterestRate = 2,
    /// `RECIPIENT_IS_UNREACHABLE`: the recipient's account ID must be asked for again.
    RecipientIsUnreachable = 3,
    /// `INSUFFICIENT_AVAILABLE_AMOUNT`.
    InsufficientAvailableAmount = 4,
}

impl FailureCode {
    /// The code as stored.
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// The mutable state of a `transfer_attempt` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptState {
    /// When the collection of the turn started (the start of the demurrage period).
    pub collection_started_at: DateTime<Utc>,
    /// The amount before demurrage and the amount cut.
    pub nominal_amount: f64,
    /// The recipient's account ID; empty while unknown.
    pub recipient: String,
    /// The version of `recipient` (answers with older versions are ignored).
    pub recipient_version: i64,
    /// When the next try is due; `None` when none is scheduled.
    pub rescheduled_for: Option<DateTime<Utc>>,
    /// When the last `PrepareTransfer` was sent.
    pub attempted_at: Option<DateTime<Utc>>,
    pub coordinator_request_id: Option<i64>,
    pub final_interest_rate_ts: Option<DateTime<Utc>>,
    /// The amount of the last try.
    pub amount: Option<i64>,
    /// The prepared transfer of the last try.
    pub transfer_id: Option<i64>,
    /// When the `FinalizeTransfer` of the last try was sent.
    pub finalized_at: Option<DateTime<Utc>>,
    pub failure_code: Option<i16>,
    pub backoff_counter: i16,
    /// A status code that ends the attempt for good.
    pub fatal_error: Option<String>,
}

/// What a rule asks the handler to send besides storing the attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing.
    None,
    /// Ask the recipient's shard for its account ID again.
    RequestAccountId,
    /// Ask the accounting authority to prepare the transfer of `amount`.
    Prepare {
        coordinator_request_id: i64,
        amount: i64,
        final_interest_rate_ts: DateTime<Utc>,
        max_commit_delay: i32,
    },
}

/// The settings the rules use.
#[derive(Debug, Clone, Copy)]
pub struct AttemptSettings {
    /// `TRANSFERS_HEALTHY_MAX_COMMIT_DELAY`: the first back-off pause and the commit delay.
    pub healthy_max_commit_delay: Duration,
    /// `TRANSFERS_AMOUNT_CUT`: the fraction kept back from every transfer for rounding.
    pub amount_cut: f64,
}

impl AttemptSettings {
    fn healthy_delay(&self) -> TimeDelta {
        TimeDelta::seconds(self.healthy_max_commit_delay.as_secs() as i64)
    }
}

/// The interest rate that the attempt's amount must survive, and the time after which the
/// accounting authority must not apply a newer rate; see [`demurrage_info`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemurrageInfo {
    pub rate: f64,
    pub final_interest_rate_ts: Option<DateTime<Utc>>,
}

/// The demurrage of the collector account since the collection started: the lowest of its
/// current rate and the rates of its changes back to (and including) the first change before
/// `collection_started_at`, never above 0; the final interest-rate time is the latest change
/// plus [`FINAL_INTEREST_RATE_TOLERANCE`]. `account` is the collector account's (current rate,
/// latest change); without it the attempt cannot be made yet (`final_interest_rate_ts`
/// `None`). `changes` are `(change_ts, rate)` newest first.
pub fn demurrage_info(
    account: Option<(f64, DateTime<Utc>)>,
    changes: impl IntoIterator<Item = (DateTime<Utc>, f64)>,
    collection_started_at: DateTime<Utc>,
) -> DemurrageInfo {
    let Some((mut min_rate, mut last_ts)) = account else {
        return DemurrageInfo {
            rate: 0.0,
            final_interest_rate_ts: None,
        };
    };
    for (change_ts, rate) in changes {
        min_rate = min_rate.min(rate);
        last_ts = last_ts.max(change_ts);
        if change_ts < collection_started_at {
            break;
        }
    }
    DemurrageInfo {
        rate: min_rate.min(0.0),
        final_interest_rate_ts: last_ts.checked_add_signed(FINAL_INTEREST_RATE_TOLERANCE),
    }
}

/// `floor(x)` as an amount; values beyond `i64::MAX` (and NaN) become `i64::MAX`, negative
/// values 0.
pub fn contained_floor(x: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let f = x.floor();
    if f.is_nan() || f >= TWO_POW_63 {
        i64::MAX
    } else if f <= 0.0 {
        0
    } else {
        f as i64
    }
}

impl AttemptState {
    /// The attempt is not waiting for anything: its recipient is known and it was either
    /// never tried or its last try failed without a fatal error.
    pub fn can_be_triggered(&self) -> bool {
        self.rescheduled_for.is_none()
            && !self.recipient.is_empty()
            && (self.attempted_at.is_none()
                || (self.failure_code.is_some() && self.fatal_error.is_none()))
    }

    /// The back-off pause in seconds: `healthy_max_commit_delay · 2^counter` (whole seconds,
    /// the exponent at most 31), at most `i32::MAX`.
    pub fn backoff_seconds(&self, settings: &AttemptSettings) -> i32 {
        let base = i128::from(
            settings
                .healthy_max_commit_delay
                .as_secs()
                .min(u64::MAX >> 1),
        );
        let exponent = self.backoff_counter.clamp(0, 31) as u32;
        (base << exponent).min(i128::from(i32::MAX)) as i32
    }

    fn increment_backoff(&mut self) {
        self.backoff_counter = match self.backoff_counter {
            c if c < 3 => 3,
            c if c < i16::MAX => c + 1,
            c => c,
        };
    }

    /// A retryable failure: the next try after the back-off pause (from the last try), and a
    /// longer pause after that.
    fn reschedule_failed(&mut self, code: FailureCode, settings: &AttemptSettings) {
        let pause = TimeDelta::seconds(i64::from(self.backoff_seconds(settings)));
        let attempted_at = self.attempted_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.rescheduled_for = Some(
            attempted_at
                .checked_add_signed(pause)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
        self.failure_code = Some(code.code());
        self.increment_backoff();
    }

    /// Applies the failure of the last try with the accounting authority's `status_code`
    /// (a `RejectedTransfer`, or a `FinalizedTransfer` that did not commit the amount).
    pub fn fail(
        &mut self,
        status_code: &str,
        settings: &AttemptSettings,
        now: DateTime<Utc>,
    ) -> Action {
        match status_code {
            "NEWER_INTEREST_RATE" => {
                self.failure_code = Some(FailureCode::NewerInterestRate.code());
                self.rescheduled_for = now.checked_add_signed(settings.healthy_delay());
                Action::None
            }
            "TIMEOUT" => {
                self.reschedule_failed(FailureCode::Timeout, settings);
                Action::None
            }
            "RECIPIENT_IS_UNREACHABLE" => {
                self.reschedule_failed(FailureCode::RecipientIsUnreachable, settings);
                Action::RequestAccountId
            }
            "INSUFFICIENT_AVAILABLE_AMOUNT" => {
                self.reschedule_failed(FailureCode::InsufficientAvailableAmount, settings);
                Action::None
            }
            other => {
                self.failure_code = Some(FailureCode::Unspecified.code());
                self.fatal_error = Some(other.to_owned());
                self.rescheduled_for = None;
                Action::None
            }
        }
    }

    /// Tries the transfer if it can be: computes the amount that reaches the recipient after
    /// the worst demurrage until the commit and the amount cut, and asks to prepare it.
    /// `next_request_id` draws a coordinator request ID (drawn even when unused).
    pub fn trigger(
        &mut self,
        info: DemurrageInfo,
        next_request_id: i64,
        settings: &AttemptSettings,
        now: DateTime<Utc>,
    ) -> Action {
        if !self.can_be_triggered() {
            return Action::None;
        }
        let max_commit_delay = self.backoff_seconds(settings);
        let period = CLOCK_PRECISION_SAFETY_MARGIN
            + (now - self.collection_started_at)
            + TimeDelta::seconds(i64::from(max_commit_delay));
        let amount = contained_floor(
            self.nominal_amount * demurrage(info.rate, period) * (1.0 - settings.amount_cut),
        );
        if amount == 0 {
            return Action::None;
        }
        let old_failure = self.failure_code;
        // After NEWER_INTEREST_RATE, only a newer final interest rate can succeed.
        let may_try = match (info.final_interest_rate_ts, self.final_interest_rate_ts) {
            (None, _) => false,
            (Some(new), Some(old))
                if old_failure == Some(FailureCode::NewerInterestRate.code()) =>
            {
                old < new
            }
            (Some(_), _) => true,
        };
        let Some(final_ts) = info.final_interest_rate_ts.filter(|_| may_try) else {
            // No interest rate to rely on yet: try again later.
            self.rescheduled_for = now.checked_add_signed(settings.healthy_delay());
            return Action::None;
        };
        self.attempted_at = Some(now);
        self.coordinator_request_id = Some(next_request_id);
        self.final_interest_rate_ts = Some(final_ts);
        self.amount = Some(amount);
        self.transfer_id = None;
        self.finalized_at = None;
        if old_failure == Some(FailureCode::RecipientIsUnreachable.code()) {
            // Preparing would fail again: ask for the recipient's account ID first.
            self.reschedule_failed(FailureCode::RecipientIsUnreachable, settings);
            return Action::RequestAccountId;
        }
        self.failure_code = None;
        Action::Prepare {
            coordinator_request_id: next_request_id,
            amount,
            final_interest_rate_ts: final_ts,
            max_commit_delay,
        }
    }

    /// Whether the recipient is still to be found (never known, or unreachable).
    pub fn needs_recipient(&self) -> bool {
        self.recipient.is_empty()
            || self.failure_code == Some(FailureCode::RecipientIsUnreachable.code())
    }

    /// Takes the recipient's account ID of `version` if the attempt still needs one and the
    /// version is newer; returns whether the recipient changed (then the attempt should be
    /// triggered). An empty account ID only records the version: a known recipient is never
    /// forgotten (a tried attempt must keep one).
    pub fn set_recipient(&mut self, account_id: &str, version: i64) -> bool {
        if !self.needs_recipient() || self.recipient_version >= version {
            return false;
        }
        self.recipient_version = version;
        if account_id.is_empty() || self.recipient == account_id {
            return false;
        }
        self.recipient = account_id.to_owned();
        if self.failure_code.is_some() {
            // The failure was about the old recipient.
            self.failure_code = Some(FailureCode::Unspecified.code());
        }
        true
    }
}

/// The amounts of a `dispatching_status` row (a collector's part of a turn in one currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchingProgress {
    pub amount_to_collect: i64,
    pub total_collected_amount: Option<i64>,
    pub amount_to_send: i64,
    pub amount_to_receive: i64,
    pub total_received_amount: Option<i64>,
    pub amount_to_dispatch: i64,
}

impl DispatchingProgress {
    fn missing_collected(&self) -> i128 {
        i128::from(self.amount_to_collect) - i128::from(self.total_collected_amount.unwrap_or(0))
    }

    /// What can be sent to other collectors: what is to be sent less what was not collected.
    pub fn available_to_send(&self) -> i64 {
        (i128::from(self.amount_to_send) - self.missing_collected()).max(0) as i64
    }

    /// What can be dispatched to buyers: what is to be dispatched less what was neither
    /// collected nor received, plus what was held back from sending.
    pub fn available_to_dispatch(&self) -> i64 {
        let hoarded = i128::from(self.amount_to_send) - i128::from(self.available_to_send());
        let missing_received = (i128::from(self.amount_to_receive)
            - i128::from(self.total_received_amount.unwrap_or(0)))
        .max(0);
        let available = i128::from(self.amount_to_dispatch) - self.missing_collected() + hoarded
            - missing_received;
        available.clamp(0, i128::from(i64::MAX)) as i64
    }
}

/// The nominal amounts of transfers planned as `(recipient, planned amount)` when only
/// `available` of `total` can be moved: each planned amount scaled down in proportion,
/// keeping those of at least 1.
pub fn scaled_transfers(
    planned: impl IntoIterator<Item = (i64, i64)>,
    available: i64,
    total: i64,
) -> Vec<(i64, f64)> {
    if total <= 0 {
        return Vec::new();
    }
    let ratio = available as f64 / total as f64;
    planned
        .into_iter()
        .map(|(recipient, amount)| (recipient, amount as f64 * ratio))
        .filter(|&(_, nominal)| nominal >= 1.0)
        .collect()
}

/// A sum of amounts as an amount (at most `i64::MAX`, at least 0).
pub fn contained_sum(amounts: impl IntoIterator<Item = i64>) -> i64 {
    amounts
        .into_iter()
        .map(i128::from)
        .sum::<i128>()
        .clamp(0, i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests;
