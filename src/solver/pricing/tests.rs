//! Reference cases T03, T05, T06 and the edge cases of docs/turns.md#pricing-edge-cases.
//!
//! The reference keys currencies by a SHA-256-derived `Key128` of the locator; we key them by
//! the locator itself, so reference case T02 (`Key128` vectors) has no counterpart here.

use super::*;

fn currency(
    confirmed: bool,
    locator: &str,
    id: i64,
    peg: Option<(&str, i64, f64)>,
) -> CurrencyInfo {
    CurrencyInfo {
        debtor_info_locator: locator.to_owned(),
        debtor_id: id,
        peg_debtor_info_locator: peg.map(|p| p.0.to_owned()),
        peg_debtor_id: peg.map(|p| p.1),
        peg_exchange_rate: peg.map(|p| p.2),
        is_confirmed: confirmed,
    }
}

fn base(locator: &str, id: i64, max_distance: u16) -> BaseCurrency {
    BaseCurrency {
        locator: locator.to_owned(),
        debtor_id: id,
        max_distance_to_base: max_distance,
    }
}

fn prices(
    base_currency: BaseCurrency,
    currencies: &[CurrencyInfo],
) -> Result<CurrencyPrices, PricingError> {
    let mut registry = CurrencyRegistry::new(base_currency);
    for c in currencies {
        registry.add_currency(c)?;
    }
    registry.prepare()
}

/// Reference case T03 (`test_currency_registry`), locator `kN` standing for key (100, N).
#[test]
fn currency_registry() {
    let mut registry = CurrencyRegistry::new(base("k1", 101, 2));
    let rows = [
        currency(false, "k1", 101, None),
        currency(true, "k2", 102, Some(("k1", 101, 2.0))),
        currency(true, "k3", 103, Some(("k2", 102, 3.0))),
        currency(false, "k4", 104, Some(("k2", 102, 4.0))),
        currency(false, "k5", 105, Some(("k3", 103, 5.0))),
        currency(true, "k6", 106, Some(("k4", 104, 6.0))),
        currency(false, "k7", 107, Some(("k1", 101, 0.5))),
        currency(true, "k8", 108, Some(("k7", 107, 1.0))),
        currency(false, "k9", 109, Some(("k7", 107, 2.0))),
        currency(true, "k10", 110, Some(("k1", 0, 1.0))),
        currency(true, "k20", 0, None),
    ];
    for row in &rows {
        registry.add_currency(row).unwrap();
    }
    let again = currency(true, "k2", 102, None);
    assert!(matches!(
        registry.add_currency(&again),
        Err(PricingError::DuplicatedDebtorKey { .. })
    ));
    let prices = registry.clone().prepare().unwrap();
    assert_eq!(prices.currency_price(102), 2.0);
    assert_eq!(prices.currency_price(103), 6.0);
    assert_eq!(prices.currency_price(108), 0.5);
    for id in [101, 104, 105, 106, 107, 109, 110, 666, 0] {
        assert!(prices.currency_price(id).is_nan(), "{id} is not tradable");
    }
    // Preparing a second time gives the same answers.
    assert_eq!(registry.prepare().unwrap().currency_price(103), 6.0);
}

#[test]
fn peg_cycles_and_self_pegs_are_unpriceable() {
    let prices = prices(
        base("b", 1, 10),
        &[
            currency(true, "b", 1, None),
            currency(true, "a", 2, Some(("c", 3, 1.0))),
            currency(true, "c", 3, Some(("a", 2, 1.0))),
            currency(true, "s", 4, Some(("s", 4, 1.0))),
            currency(true, "t", 5, Some(("a", 2, 1.0))),
        ],
    )
    .unwrap();
    assert_eq!(prices.currency_price(1), 1.0);
    for id in [2, 3, 4, 5] {
        assert!(prices.currency_price(id).is_nan());
    }
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    let n = 200_000;
    let mut rows = vec![currency(true, "c0", 1, None)];
    for i in 1..n {
        let peg = format!("c{}", i - 1);
        rows.push(currency(
            true,
            &format!("c{i}"),
            i + 1,
            Some((&peg, i, 1.0)),
        ));
    }
    let prices = prices(base("c0", 1, 3), &rows).unwrap();
    assert_eq!(prices.currency_price(4), 1.0);
    assert!(prices.currency_price(5).is_nan());
    assert_eq!(prices.tradable().count(), 4);
}

#[test]
fn base_errors() {
    // The locator of the base names another debtor ID.
    let err = prices(base("b", 1, 10), &[currency(true, "b", 2, None)]).unwrap_err();
    assert_eq!(err, PricingError::InconsistentBase);
    // The base is unconfirmed but another tradable currency claims its debtor ID.
    let rows = [
        currency(false, "b", 1, None),
        currency(true, "other", 1, Some(("b", 1, 1.0))),
    ];
    assert_eq!(
        prices(base("b", 1, 10), &rows).unwrap_err(),
        PricingError::BaseClaimed
    );
    // Two tradable currencies with one debtor ID.
    let rows = [
        currency(true, "b", 1, None),
        currency(true, "x", 7, Some(("b", 1, 1.0))),
        currency(true, "y", 7, Some(("b", 1, 1.0))),
    ];
    assert_eq!(
        prices(base("b", 1, 10), &rows).unwrap_err(),
        PricingError::DuplicatedTradableDebtorId { debtor_id: 7 }
    );
    // Several unconfirmed currencies may share a debtor ID.
    let rows = [
        currency(true, "b", 1, None),
        currency(false, "x", 7, Some(("b", 1, 1.0))),
        currency(false, "y", 7, Some(("b", 1, 1.0))),
    ];
    assert!(prices(base("b", 1, 10), &rows).is_ok());
}

#[test]
fn unreachable_base_prices_nothing() {
    // The configured base locator differs from the document's locator: an empty tree.
    let rows = [
        currency(true, "https://example.com/101", 101, None),
        currency(true, "x", 102, Some(("https://example.com/101", 101, 2.0))),
    ];
    let prices = prices(base("https://x.com/101", 101, 10), &rows).unwrap();
    assert_eq!(prices.tradable().count(), 0);
}

#[test]
fn odd_rates_give_odd_prices() {
    let rows = [
        currency(true, "b", 1, None),
        currency(true, "big", 2, Some(("b", 1, 1e30))),
        currency(true, "huge", 3, Some(("big", 2, 1e30))),
        currency(true, "nan", 4, Some(("b", 1, f64::NAN))),
        currency(true, "neg", 5, Some(("b", 1, -2.0))),
        currency(true, "zero", 6, Some(("b", 1, 0.0))),
    ];
    let prices = prices(base("b", 1, 10), &rows).unwrap();
    assert_eq!(prices.currency_price(2), 1e30);
    assert_eq!(prices.currency_price(3), f32::INFINITY);
    // Tradable, but with a NaN price: matching excludes every non-positive or NaN price.
    assert!(prices.tradable_currency(4).unwrap().price.is_nan());
    assert_eq!(prices.currency_price(5), -2.0);
    assert_eq!(prices.currency_price(6), 0.0);
}

fn t05_processor() -> BidProcessor {
    let mut bp = BidProcessor::new(base("x/101", 101, 2), 1000);
    let rows = [
        currency(false, "x/101", 101, None),
        currency(true, "x/102", 102, Some(("x/101", 101, 2.0))),
        currency(true, "x/103", 103, Some(("x/102", 102, 3.0))),
        currency(true, "x/104", 104, Some(("x/103", 103, 4.0))),
        currency(false, "x/105", 105, Some(("x/101", 101, 5.0))),
        currency(true, "x/106", 106, Some(("x/105", 105, 6.0))),
        currency(false, "x/107", 107, Some(("x/102", 102, 7.0))),
        currency(true, "x/108", 108, Some(("x/102", 666, 1.0))),
        currency(true, "x/109", 109, Some(("x/666", 102, 1.0))),
    ];
    for row in &rows {
        bp.register_currency(row).unwrap();
    }
    bp
}

type BidRow = (i64, i64, i64, Option<(i64, f64)>);

fn register(bp: &mut BidProcessor, bids: &[BidRow], aux: BidAux) {
    for &(creditor, debtor, amount, peg) in bids {
        bp.register_bid(creditor, debtor, amount, peg, aux).unwrap();
    }
}

/// Reference cases T05 and T06 (`test_bp_candidate_offers`).
#[test]
fn bid_processor_candidate_offers() {
    let mut bp = t05_processor();
    let special = BidAux {
        creation_date: chrono::NaiveDate::from_ymd_opt(2023, 1, 4).unwrap(),
        last_transfer_number: 1234,
    };
    let plain = BidAux::default();
    register(&mut bp, &[(1, 105, -666666, Some((101, 5.0)))], plain);
    register(&mut bp, &[(1, 106, -50000, Some((105, 6.000005)))], special);
    register(
        &mut bp,
        &[
            (1, 102, 10000, Some((101, 2.0))),
            (1, 103, 100, Some((102, 3.0))),
            (2, 101, 666666, None),
            (2, 105, -666666, Some((101, 5.0))),
            (2, 106, -50000, Some((105, 6.0))),
            (2, 102, 10000, Some((101, 1.999))),
            (2, 103, 10000, Some((102, 3.0))),
            (3, 101, 666666, None),
            (3, 105, -666666, Some((101, 5.0))),
            (3, 106, 50000, Some((105, 6.0))),
            (3, 102, -100, Some((101, 2.0))),
            (3, 103, 10000, Some((102, 3.0))),
            (3, 104, -10000, Some((103, 4.0))),
        ],
        plain,
    );
    assert_eq!(bp.currency_price(102).unwrap(), 2.0);
    assert_eq!(bp.currency_price(103).unwrap(), 6.0);
    assert_eq!(bp.currency_price(106).unwrap(), 30.0);
    for id in [101, 104, 105, 107, 108, 109] {
        assert!(bp.currency_price(id).unwrap().is_nan());
    }
    let offers = bp.analyze_bids().unwrap();
    let expected = vec![
        CandidateOffer {
            amount: 10000,
            debtor_id: 102,
            creditor_id: 1,
            aux: plain,
        },
        CandidateOffer {
            amount: -50000,
            debtor_id: 106,
            creditor_id: 1,
            aux: special,
        },
    ];
    assert_eq!(offers, expected);
    assert_eq!(
        bp.currencies_to_be_confirmed().collect::<Vec<_>>(),
        [104, 105]
    );

    // T06: the bids are gone after an analysis.
    assert!(bp.analyze_bids().unwrap().is_empty());
    assert!(bp.analyze_bids().unwrap().is_empty());
    register(
        &mut bp,
        &[
            (5, 101, 666666, None),
            (5, 105, -666666, Some((101, 5.0))),
            (5, 106, -50000, Some((105, 6.000005))),
            (5, 102, 10000, Some((101, 2.0))),
            (5, 103, 10000, Some((102, 3.0))),
            (5, 107, -10000, Some((102, 7.0))),
        ],
        plain,
    );
    let offers = bp.analyze_bids().unwrap();
    let ids: Vec<i64> = offers.iter().map(|o| o.debtor_id).collect();
    assert_eq!(ids, [102, 103, 106]);
    assert!(bp.analyze_bids().unwrap().is_empty());
    let late = currency(true, "x/110", 110, None);
    assert_eq!(
        bp.register_currency(&late),
        Err(PricingError::CurrencyAfterAnalysis)
    );
    assert_eq!(
        bp.currencies_to_be_confirmed().collect::<Vec<_>>(),
        [104, 105, 107]
    );
    for id in [104, 105, 107, 104, 105, 107] {
        bp.remove_currency_to_be_confirmed(id);
    }
    assert_eq!(bp.currencies_to_be_confirmed().count(), 0);
}

#[test]
fn duplicated_bid_is_an_error() {
    let mut bp = t05_processor();
    bp.register_bid(2, 123, 1, Some((102, 1.0)), BidAux::default())
        .unwrap();
    let again = bp.register_bid(2, 123, 5, None, BidAux::default());
    assert_eq!(
        again,
        Err(PricingError::DuplicatedBid {
            creditor_id: 2,
            debtor_id: 123
        })
    );
    // Debtor ID 0 is ignored, however often.
    bp.register_bid(2, 0, 1, None, BidAux::default()).unwrap();
    bp.register_bid(2, 0, 1, None, BidAux::default()).unwrap();
}
