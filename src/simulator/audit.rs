//! The audit of a turn: the money the authority moved against what the solver decided.
//!
//! **The decisions** are read from the workers' `account_lock` rows of the turn once they are
//! all revised: `ReviseAccountLock` sets `has_been_revised` and makes `amount` the solver's
//! decision (negative: the seller pays that much; positive: the buyer is given that much),
//! and deletes the locks the solver left out (docs/turns.md#account-locks). The read is
//! race-free: a revised lock changes only when a `CandidateOffer` of a later turn overwrites
//! it, and candidate offers are sent only in that turn's phase 2; so when, *after* reading the
//! locks, no later turn has reached phase 2 in the solver database, the locks read were all
//! still the turn's. (The solver's six result tables are no good: each worker deletes its
//! rows of them as soon as it has copied them, at any moment after the turn's phase 3 begins.)
//!
//! **The checks**, once every seller has paid and every buyer has been paid, and no worker
//! has a dispatching status, a transfer attempt or an unreleased account lock of the turn
//! left (then the workers have sent every dismissal of the turn's empty prepared transfers;
//! the audit gives them a few seconds to reach the authority):
//!
//! - every seller paid its collector exactly once, exactly what was decided;
//! - every buyer was paid exactly once, what it was given less the amount cut
//!   (`floor(given · (1 − TRANSFERS_AMOUNT_CUT))` exactly when its collector received
//!   nothing from other collectors and there is no interest; otherwise — a received
//!   transfer is cut too, and the worst demurrage is discounted, docs/turns.md#transfers —
//!   between `floor(given · (1 − cut)² · demurrage) − 2` and that);
//! - no commit of the turn that nobody was owed, no collector poorer after the turn;
//! - per currency, the sellers paid what the buyers were given (the solver's rule), and every
//!   account at the authority together holds what was issued;
//! - nothing the turn prepared is still open at the authority.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;

use super::authority::{Authority, Commit};
use super::documents::Currencies;
use crate::transfers::attempts::contained_floor;
use crate::transfers::{AGENT_TRANSFER_NOTE_FORMAT, NoteKind, TransferNote, demurrage};

/// One revised account lock: the solver's decision about one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::QueryableByName)]
pub struct Decision {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub creditor_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub debtor_id: i64,
    /// Negative: taken from a seller; positive: given to a buyer.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub amount: i64,
    /// The lock's collector (a seller's pays it).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub collector_id: i64,
    /// The request of the lock's prepared transfer.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub coordinator_request_id: i64,
}

/// What the audit knows besides the decisions and the commits.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// `TRANSFERS_AMOUNT_CUT`.
    pub amount_cut: f64,
    /// The authority's interest rate (percent a year).
    pub interest_rate: f64,
    /// From the turn's collection start to now.
    pub since_collection: TimeDelta,
}

/// A turn's commit with its parsed note.
fn notes_of<'a>(
    turn_id: i32,
    commits: &'a [Commit],
) -> impl Iterator<Item = (&'a Commit, TransferNote)> + 'a {
    commits.iter().filter_map(move |c| {
        if c.transfer_note_format != AGENT_TRANSFER_NOTE_FORMAT {
            return None;
        }
        let note = TransferNote::parse(&c.transfer_note)?;
        (note.turn_id == turn_id).then_some((c, note))
    })
}

/// The turn of a commit, if it is a turn transfer.
pub fn turn_of(c: &Commit) -> Option<i32> {
    if c.transfer_note_format != AGENT_TRANSFER_NOTE_FORMAT {
        return None;
    }
    TransferNote::parse(&c.transfer_note).map(|n| n.turn_id)
}

/// Sellers and buyers still waiting for their transfer: `(unpaid sellers, unpaid buyers)`.
pub fn waiting(turn_id: i32, decisions: &[Decision], commits: &[Commit]) -> (usize, usize) {
    let mut collected = BTreeSet::new();
    let mut dispatched = BTreeSet::new();
    for (c, note) in notes_of(turn_id, commits) {
        match note.kind {
            NoteKind::Collecting => collected.insert((c.debtor_id, c.from)),
            NoteKind::Dispatching => dispatched.insert((c.debtor_id, c.to)),
            NoteKind::Sending => false,
        };
    }
    let sellers = decisions
        .iter()
        .filter(|d| d.amount < 0 && !collected.contains(&(d.debtor_id, d.creditor_id)))
        .count();
    let buyers = decisions
        .iter()
        .filter(|d| d.amount > 0 && !dispatched.contains(&(d.debtor_id, d.creditor_id)))
        .count();
    (sellers, buyers)
}

/// The traded volume in base units: what the buyers were given, at the currencies' prices.
pub fn volume(decisions: &[Decision], currencies: &Currencies) -> f64 {
    decisions
        .iter()
        .filter(|d| d.amount > 0)
        .map(|d| {
            d.amount as f64
                * currencies
                    .get(d.debtor_id)
                    .map_or(0.0, |c| f64::from(c.price))
        })
        .sum()
}

/// Checks a turn whose transfers are done; returns every difference found.
pub fn check_turn(
    turn_id: i32,
    decisions: &[Decision],
    commits: &[Commit],
    params: Params,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut sellers: BTreeMap<(i64, i64), &Decision> = BTreeMap::new();
    let mut buyers: BTreeMap<(i64, i64), &Decision> = BTreeMap::new();
    let mut taken: BTreeMap<i64, i128> = BTreeMap::new();
    let mut given: BTreeMap<i64, i128> = BTreeMap::new();
    for d in decisions {
        let key = (d.debtor_id, d.creditor_id);
        let duplicate = if d.amount < 0 {
            *taken.entry(d.debtor_id).or_default() -= i128::from(d.amount);
            sellers.insert(key, d).is_some()
        } else {
            *given.entry(d.debtor_id).or_default() += i128::from(d.amount);
            buyers.insert(key, d).is_some() || d.amount == 0
        };
        if duplicate {
            errors.push(format!("a duplicate or empty decision: {d:?}"));
        }
    }
    for debtor_id in taken.keys().chain(given.keys()).collect::<BTreeSet<_>>() {
        let (t, g) = (
            taken.get(debtor_id).copied().unwrap_or(0),
            given.get(debtor_id).copied().unwrap_or(0),
        );
        if t != g {
            errors.push(format!(
                "currency {debtor_id}: the sellers give {t}, but the buyers are given {g}"
            ));
        }
    }

    let mut paid: BTreeMap<(i64, i64), Vec<&Commit>> = BTreeMap::new();
    let mut received: BTreeMap<(i64, i64), Vec<&Commit>> = BTreeMap::new();
    let mut collectors_receiving: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut collectors_net: BTreeMap<(i64, i64), i128> = BTreeMap::new();
    for (c, note) in notes_of(turn_id, commits) {
        let (payer, payee) = match note.kind {
            NoteKind::Collecting => (note.second_id, note.first_id),
            NoteKind::Sending | NoteKind::Dispatching => (note.first_id, note.second_id),
        };
        if (c.from, c.to) != (payer, payee) {
            errors.push(format!(
                "a transfer of {} from {} to {} has the note of a transfer from {payer} to \
                 {payee}: {:?}",
                c.amount, c.from, c.to, c.transfer_note
            ));
        }
        match note.kind {
            NoteKind::Collecting => {
                paid.entry((c.debtor_id, c.from)).or_default().push(c);
                *collectors_net.entry((c.debtor_id, c.to)).or_default() += i128::from(c.amount);
            }
            NoteKind::Sending => {
                collectors_receiving.insert((c.debtor_id, c.to));
                *collectors_net.entry((c.debtor_id, c.to)).or_default() += i128::from(c.amount);
                *collectors_net.entry((c.debtor_id, c.from)).or_default() -= i128::from(c.amount);
            }
            NoteKind::Dispatching => {
                received.entry((c.debtor_id, c.to)).or_default().push(c);
                *collectors_net.entry((c.debtor_id, c.from)).or_default() -= i128::from(c.amount);
            }
        }
    }

    for (key, d) in &sellers {
        match paid.remove(key).as_deref() {
            None | Some([]) => errors.push(format!(
                "seller {} of {} did not pay (decided: {})",
                d.creditor_id, d.debtor_id, -d.amount
            )),
            Some([c]) => {
                if c.amount != -d.amount {
                    errors.push(format!(
                        "seller {} of {} paid {}, but {} was decided",
                        d.creditor_id, d.debtor_id, c.amount, -d.amount
                    ));
                }
                if c.to != d.collector_id {
                    errors.push(format!(
                        "seller {} of {} paid collector {}, not its lock's collector {}",
                        d.creditor_id, d.debtor_id, c.to, d.collector_id
                    ));
                }
            }
            Some(many) => errors.push(format!(
                "seller {} of {} paid {} times: {:?}",
                d.creditor_id,
                d.debtor_id,
                many.len(),
                many.iter().map(|c| c.amount).collect::<Vec<_>>()
            )),
        }
    }
    for ((debtor_id, creditor_id), cs) in &paid {
        errors.push(format!(
            "{creditor_id} paid {:?} of {debtor_id} in the turn, but it is no seller",
            cs.iter().map(|c| c.amount).collect::<Vec<_>>()
        ));
    }

    let cut = params.amount_cut;
    let worst = if params.interest_rate < 0.0 {
        demurrage(
            params.interest_rate,
            params.since_collection + TimeDelta::days(1),
        )
    } else {
        1.0
    };
    for (key, d) in &buyers {
        match received.remove(key).as_deref() {
            None | Some([]) => errors.push(format!(
                "buyer {} of {} was not paid (given: {})",
                d.creditor_id, d.debtor_id, d.amount
            )),
            Some([c]) => {
                let given = d.amount as f64;
                let upper = contained_floor(given * (1.0 - cut));
                let exact = params.interest_rate >= 0.0
                    && !collectors_receiving.contains(&(c.debtor_id, c.from));
                let lower = if exact {
                    upper
                } else {
                    contained_floor(given * (1.0 - cut) * (1.0 - cut) * worst) - 2
                };
                if !(lower..=upper).contains(&c.amount) {
                    errors.push(format!(
                        "buyer {} of {} received {}, but was given {} (expected {}{})",
                        d.creditor_id,
                        d.debtor_id,
                        c.amount,
                        d.amount,
                        if exact { "" } else { "at least " },
                        lower
                    ));
                }
            }
            Some(many) => errors.push(format!(
                "buyer {} of {} was paid {} times: {:?}",
                d.creditor_id,
                d.debtor_id,
                many.len(),
                many.iter().map(|c| c.amount).collect::<Vec<_>>()
            )),
        }
    }
    for ((debtor_id, creditor_id), cs) in &received {
        errors.push(format!(
            "{creditor_id} was paid {:?} of {debtor_id} in the turn, but it is no buyer",
            cs.iter().map(|c| c.amount).collect::<Vec<_>>()
        ));
    }
    for ((debtor_id, collector_id), net) in &collectors_net {
        if *net < 0 {
            errors.push(format!(
                "collector {collector_id} of {debtor_id} lost {} in the turn",
                -net
            ));
        }
    }
    errors
}

/// Every account at the authority together must hold what was issued, per currency.
pub fn check_totals(aa: &Authority, issued: &BTreeMap<i64, i128>) -> Vec<String> {
    let totals = aa.totals();
    let mut errors = Vec::new();
    for debtor_id in totals.keys().chain(issued.keys()).collect::<BTreeSet<_>>() {
        let (now, then) = (
            totals.get(debtor_id).copied().unwrap_or(0),
            issued.get(debtor_id).copied().unwrap_or(0),
        );
        if now != then {
            errors.push(format!(
                "currency {debtor_id}: the accounts hold {now} together, but {then} was issued"
            ));
        }
    }
    errors
}

/// The turn's transfers still open at the authority: those of its account locks, and, when
/// `collectors` is true, every transfer a collector prepared (no later turn is moving money).
pub fn check_open_transfers(
    decisions: &[Decision],
    aa: &Authority,
    is_collector: impl Fn(i64) -> bool,
    collectors: bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    for d in decisions {
        if let Some(t) = aa.transfer_of_request(d.creditor_id, d.coordinator_request_id)
            && t.outcome.is_none()
        {
            errors.push(format!(
                "the transfer of {}'s account lock in {} is still open ({} locked)",
                d.creditor_id, d.debtor_id, t.locked_amount
            ));
        }
    }
    if collectors {
        for t in aa.open_transfers() {
            if is_collector(t.creditor_id) {
                errors.push(format!(
                    "collector {} has a transfer of {} still open ({} locked)",
                    t.creditor_id, t.debtor_id, t.locked_amount
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const TURN: i32 = 4;
    const X: i64 = 700;
    const C1: i64 = 0x0000_0100_0000_0001;
    const C2: i64 = 0x0000_0100_0000_0002;

    fn d(creditor_id: i64, amount: i64, collector_id: i64) -> Decision {
        Decision {
            creditor_id,
            debtor_id: X,
            amount,
            collector_id,
            coordinator_request_id: creditor_id * 10,
        }
    }

    fn commit(kind: NoteKind, from: i64, to: i64, amount: i64) -> Commit {
        let (first_id, second_id) = match kind {
            NoteKind::Collecting => (to, from),
            _ => (from, to),
        };
        let note = TransferNote {
            turn_id: TURN,
            kind,
            first_id,
            second_id,
        };
        Commit {
            debtor_id: X,
            from,
            to,
            amount,
            transfer_note_format: AGENT_TRANSFER_NOTE_FORMAT.into(),
            transfer_note: note.to_string(),
            transfer_id: 1,
            coordinator_request_id: 1,
        }
    }

    const PARAMS: Params = Params {
        amount_cut: 1e-5,
        interest_rate: 0.0,
        since_collection: TimeDelta::zero(),
    };

    /// Seller 1 (collector C1) sells 300 000; C1 sends to C2, which pays buyer 3; buyer 2 is
    /// paid by C1.
    fn turn() -> (Vec<Decision>, Vec<Commit>) {
        let decisions = vec![d(1, -300_000, C1), d(2, 100_000, C1), d(3, 200_000, C2)];
        let commits = vec![
            commit(NoteKind::Collecting, 1, C1, 300_000),
            commit(NoteKind::Dispatching, C1, 2, 99_999),
            commit(NoteKind::Sending, C1, C2, 199_998),
            commit(NoteKind::Dispatching, C2, 3, 199_995),
        ];
        (decisions, commits)
    }

    #[test]
    fn a_clean_turn_passes() {
        let (decisions, commits) = turn();
        assert_eq!(waiting(TURN, &decisions, &commits), (0, 0));
        assert_eq!(
            check_turn(TURN, &decisions, &commits, PARAMS),
            Vec::<String>::new()
        );
        assert_eq!(waiting(TURN, &decisions, &commits[..1]), (0, 2));
        assert_eq!(waiting(TURN + 1, &decisions, &commits), (1, 2));
    }

    #[test]
    fn every_difference_is_reported() {
        let (decisions, mut commits) = turn();
        // The seller paid one unit too little, buyer 2 got one unit too much, and buyer 3
        // was paid twice; someone unknown was paid.
        commits[0].amount = 299_999;
        commits[1].amount = 100_000;
        commits.push(commit(NoteKind::Dispatching, C2, 3, 10));
        commits.push(commit(NoteKind::Dispatching, C2, 9, 10));
        let errors = check_turn(TURN, &decisions, &commits, PARAMS);
        let text = errors.join("\n");
        assert!(
            text.contains("seller 1 of 700 paid 299999, but 300000 was decided"),
            "{text}"
        );
        assert!(
            text.contains("buyer 2 of 700 received 100000, but was given 100000 (expected 99999)"),
            "{text}"
        );
        assert!(text.contains("buyer 3 of 700 was paid 2 times"), "{text}");
        assert!(
            text.contains("9 was paid [10] of 700 in the turn, but it is no buyer"),
            "{text}"
        );
        assert!(
            text.contains("collector 1099511627778 of 700 lost"),
            "{text}"
        );
        assert_eq!(errors.len(), 5, "{text}");
    }

    #[test]
    fn the_solvers_balance_and_a_missing_payment_are_reported() {
        let (mut decisions, commits) = turn();
        decisions[2].amount = 200_001;
        let errors = check_turn(TURN, &decisions, &commits[..3], PARAMS).join("\n");
        assert!(
            errors.contains("the sellers give 300000, but the buyers are given 300001"),
            "{errors}"
        );
        assert!(
            errors.contains("buyer 3 of 700 was not paid (given: 200001)"),
            "{errors}"
        );
    }

    #[test]
    fn totals_and_open_transfers_are_checked_at_the_authority() {
        let mut aa = Authority::default();
        let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        aa.open_account(X, 1, "1", 500, date, 0);
        aa.open_account(X, C1, "c1", 0, date, 0);
        let issued = BTreeMap::from([(X, 500)]);
        assert!(check_totals(&aa, &issued).is_empty());
        let more = BTreeMap::from([(X, 501)]);
        assert_eq!(check_totals(&aa, &more).len(), 1);
        let prepare = crate::messages::PrepareTransfer {
            creditor_id: 1,
            debtor_id: X,
            coordinator_request_id: 10,
            min_locked_amount: 100,
            max_locked_amount: 200,
            recipient: "c1".into(),
            final_interest_rate_ts: chrono::Utc::now(),
            max_commit_delay: 1000,
            ts: chrono::Utc::now(),
        };
        aa.handle(&prepare.into(), chrono::Utc::now());
        let decisions = [d(1, -150, C1)];
        let open = check_open_transfers(&decisions, &aa, |id| id == C1, true);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].contains("still open (200 locked)"));
    }
}
