use super::*;

fn now() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn settings() -> AttemptSettings {
    AttemptSettings {
        healthy_max_commit_delay: Duration::from_secs(3 * 3600),
        amount_cut: 1e-8,
    }
}

fn fresh(recipient: &str) -> AttemptState {
    AttemptState {
        collection_started_at: now() - TimeDelta::days(30),
        nominal_amount: 1e9,
        recipient: recipient.into(),
        recipient_version: i64::MIN,
        rescheduled_for: None,
        attempted_at: None,
        coordinator_request_id: None,
        final_interest_rate_ts: None,
        amount: None,
        transfer_id: None,
        finalized_at: None,
        failure_code: None,
        backoff_counter: 0,
        fatal_error: None,
    }
}

/// The reference's case: rate 5 now, -20 ten days ago, -10 a thousand days ago.
fn reference_info() -> DemurrageInfo {
    demurrage_info(
        Some((5.0, now() - TimeDelta::days(10))),
        [
            (now() - TimeDelta::days(10), -20.0),
            (now() - TimeDelta::days(1000), -10.0),
        ],
        now() - TimeDelta::days(30),
    )
}

#[test]
fn demurrage_info_takes_the_lowest_rate_since_the_collection_started() {
    let info = reference_info();
    assert_eq!(info.rate, -20.0);
    assert_eq!(
        info.final_interest_rate_ts,
        Some(now() - TimeDelta::days(10) + TimeDelta::seconds(2))
    );
    // The first change before the collection counts; older ones do not.
    let info = demurrage_info(
        Some((0.0, now() - TimeDelta::days(100))),
        [
            (now() - TimeDelta::days(100), -5.0),
            (now() - TimeDelta::days(200), -50.0),
        ],
        now() - TimeDelta::days(30),
    );
    assert_eq!(info.rate, -5.0);
    // Positive rates count as 0; no account means no final interest rate.
    let info = demurrage_info(Some((3.0, now())), [], now());
    assert_eq!(info.rate, 0.0);
    let info = demurrage_info(None, [(now(), -1.0)], now());
    assert_eq!(info.final_interest_rate_ts, None);
}

#[test]
fn a_triggered_attempt_prepares_the_amount_after_demurrage_and_cut() {
    let mut a = fresh("account123");
    let action = a.trigger(reference_info(), 77, &settings(), now());
    let Action::Prepare {
        coordinator_request_id,
        amount,
        max_commit_delay,
        final_interest_rate_ts,
    } = action
    else {
        panic!("{action:?}")
    };
    assert_eq!(coordinator_request_id, 77);
    assert_eq!(max_commit_delay, 10_800);
    assert_eq!(
        final_interest_rate_ts,
        now() - TimeDelta::days(10) + TimeDelta::seconds(2)
    );
    // -20 % a year over 30 days, 3 hours and 10 minutes.
    let t = 30.0 * 86_400.0 + 10_800.0 + 600.0;
    let expected = (1e9 * ((0.8f64).ln() / SECONDS_IN_YEAR_F * t).exp() * (1.0 - 1e-8)).floor();
    assert_eq!(amount, expected as i64);
    assert!((981_000_000..982_000_000).contains(&amount), "{amount}");
    assert_eq!(a.amount, Some(amount));
    assert_eq!(a.attempted_at, Some(now()));
    assert_eq!(a.failure_code, None);
    // Not again while the try is under way.
    assert_eq!(
        a.trigger(reference_info(), 78, &settings(), now()),
        Action::None
    );
}

const SECONDS_IN_YEAR_F: f64 = crate::transfers::demurrage::SECONDS_IN_YEAR;

#[test]
fn failures_follow_the_status_code() {
    let cases = [
        ("TIMEOUT", 1, 101, true, false),
        ("NEWER_INTEREST_RATE", 2, 100, true, false),
        ("RECIPIENT_IS_UNREACHABLE", 3, 101, true, true),
        ("INSUFFICIENT_AVAILABLE_AMOUNT", 4, 101, true, false),
        ("FATAL_ERROR", 0, 100, false, false),
    ];
    for (status, code, counter, rescheduled, asks) in cases {
        let mut a = fresh("account123");
        a.trigger(reference_info(), 7, &settings(), now());
        a.backoff_counter = 100;
        let action = a.fail(status, &settings(), now());
        assert_eq!(a.failure_code, Some(code), "{status}");
        assert_eq!(a.backoff_counter, counter, "{status}");
        assert_eq!(a.rescheduled_for.is_some(), rescheduled, "{status}");
        assert_eq!(action == Action::RequestAccountId, asks, "{status}");
        if status == "FATAL_ERROR" {
            assert_eq!(a.fatal_error.as_deref(), Some("FATAL_ERROR"));
            assert!(!a.can_be_triggered(), "a fatal error is never retried");
        }
    }
}

#[test]
fn the_backoff_doubles_from_the_healthy_delay_up_to_i32_max() {
    let mut a = fresh("x");
    a.trigger(reference_info(), 1, &settings(), now());
    a.fail("TIMEOUT", &settings(), now());
    assert_eq!(
        a.rescheduled_for,
        Some(now() + TimeDelta::seconds(10_800)),
        "the first pause is the healthy delay"
    );
    assert_eq!(a.backoff_counter, 3);
    assert_eq!(a.backoff_seconds(&settings()), 10_800 * 8);
    a.backoff_counter = 40;
    assert_eq!(a.backoff_seconds(&settings()), i32::MAX);
    a.backoff_counter = i16::MAX;
    a.increment_backoff();
    assert_eq!(a.backoff_counter, i16::MAX);
}

#[test]
fn an_unreachable_recipient_is_asked_for_again_before_preparing() {
    let mut a = fresh("account123");
    a.trigger(reference_info(), 1, &settings(), now());
    a.fail("RECIPIENT_IS_UNREACHABLE", &settings(), now());
    a.rescheduled_for = None; // the back-off passed (TriggerTransfer)
    let later = now() + TimeDelta::hours(4);
    assert_eq!(
        a.trigger(reference_info(), 2, &settings(), later),
        Action::RequestAccountId
    );
    assert_eq!(a.failure_code, Some(3));
    assert!(a.rescheduled_for.is_some());
    // A new account ID arrives: recorded, the failure code reset.
    assert!(a.set_recipient("account123new", 2));
    assert_eq!(a.recipient, "account123new");
    assert_eq!(a.failure_code, Some(0));
    // An older version, or the same ID again, changes nothing more.
    assert!(!a.set_recipient("other", 1));
    assert!(!a.set_recipient("account123new", 3));
    assert_eq!(a.recipient_version, 2, "not needed any more");
}

#[test]
fn an_empty_account_id_never_erases_a_known_recipient() {
    let mut a = fresh("account123");
    a.trigger(reference_info(), 1, &settings(), now());
    a.fail("RECIPIENT_IS_UNREACHABLE", &settings(), now());
    assert!(!a.set_recipient("", 5));
    assert_eq!(a.recipient, "account123");
    assert_eq!(a.recipient_version, 5);
    let mut b = fresh("");
    assert!(!b.set_recipient("", 1));
    assert!(b.set_recipient("acc", 2));
}

#[test]
fn without_a_final_interest_rate_the_attempt_waits() {
    let mut a = fresh("account123");
    let info = demurrage_info(None, [], now());
    assert_eq!(a.trigger(info, 1, &settings(), now()), Action::None);
    assert_eq!(a.rescheduled_for, Some(now() + TimeDelta::hours(3)));
    assert_eq!(a.attempted_at, None);
    // After NEWER_INTEREST_RATE, the same final rate waits too.
    let mut a = fresh("account123");
    a.trigger(reference_info(), 1, &settings(), now());
    a.fail("NEWER_INTEREST_RATE", &settings(), now());
    a.rescheduled_for = None;
    assert_eq!(
        a.trigger(reference_info(), 2, &settings(), now()),
        Action::None
    );
    assert_eq!(a.coordinator_request_id, Some(1));
    assert!(a.rescheduled_for.is_some());
    let newer = DemurrageInfo {
        final_interest_rate_ts: Some(now()),
        ..reference_info()
    };
    a.rescheduled_for = None;
    assert!(matches!(
        a.trigger(newer, 3, &settings(), now()),
        Action::Prepare { .. }
    ));
}

#[test]
fn dispatching_amounts_hold_back_what_was_not_collected_or_received() {
    let d = DispatchingProgress {
        amount_to_collect: 10_000,
        total_collected_amount: Some(10_000),
        amount_to_send: 3_000,
        amount_to_receive: 5_000,
        total_received_amount: Some(4_995),
        amount_to_dispatch: 12_000,
    };
    assert_eq!(d.available_to_send(), 3_000);
    assert_eq!(d.available_to_dispatch(), 11_995);
    // 2 000 not collected: sending gives 1 000, dispatching keeps the rest.
    let d = DispatchingProgress {
        total_collected_amount: Some(8_000),
        ..d
    };
    assert_eq!(d.available_to_send(), 1_000);
    assert_eq!(d.available_to_dispatch(), 12_000 - 2_000 + 2_000 - 5);
    assert_eq!(
        scaled_transfers([(1, 3_000), (2, 1)], 1_000, 3_001),
        vec![(1, 3_000.0 * (1_000.0 / 3_001.0))]
    );
    assert_eq!(contained_sum([i64::MAX, 5]), i64::MAX);
}
