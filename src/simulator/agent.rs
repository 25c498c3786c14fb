//! A stand-in Creditors Agent: `N` simulated creditors (customers of the service) with
//! accounts in the simulated currencies, and the messages the real agent sends the workers
//! about them (docs/messages.md#messages-from-the-creditors-agent): `UpdatedLedger` after
//! every change of an account's balance, `UpdatedFlags` when an account is opened, and
//! `UpdatedPolicy` — each creditor's trading policies, drawn again before every turn.
//!
//! Before every turn each creditor (with a seeded random generator) picks one currency it
//! holds to sell and another one to buy, of about the same value: a sell policy keeps at most
//! `principal − sell` (`max_principal`), a buy policy wants at least `principal + buy`
//! (`min_principal`, no upper bound). Every other policy of the creditor is cleared (no
//! policy name: no bid). Policies are pegged directly to the base currency at the currency's
//! price, which is how a bid's price agrees with the currency's (docs/turns.md#bid-processing).
//! With creditors buying and selling at random across the currencies, the offers always form
//! trading cycles.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::authority::Authority;
use super::documents::Currencies;
use crate::messages::{
    AccountTransfer, IncomingMessage, UpdatedFlags, UpdatedLedger, UpdatedPolicy,
};

/// The policy name of every drawn policy.
pub const POLICY_NAME: &str = "simulated";

/// What a creditor starts with: this many minimum trades' worth, at the highest price, in
/// each of its first two currencies.
const INITIAL_TRADES_WORTH: f64 = 100.0;

/// A seller locks a little more than it sells (for the worst demurrage until the collection
/// deadline, docs/turns.md#account-locks): it keeps this much more than its offer.
const LOCK_MARGIN: f64 = 1.1;

/// One account of a creditor.
#[derive(Debug, Clone)]
struct Holding {
    principal: i64,
    /// Whether its policy is set (not cleared).
    has_policy: bool,
}

/// A simulated creditor.
#[derive(Debug, Clone)]
struct Creditor {
    creditor_id: i64,
    holdings: BTreeMap<i64, Holding>,
}

/// The simulated Creditors Agent.
pub struct Agent {
    currencies: Arc<Currencies>,
    creditors: Vec<Creditor>,
    index: HashMap<i64, usize>,
    rng: StdRng,
    min_trade_amount: i64,
    last_update_id: i64,
    /// What was issued in each currency (the creditors' opening balances).
    pub issued: BTreeMap<i64, i128>,
}

impl Agent {
    /// `count` creditors, IDs `first_creditor_id..first_creditor_id + count`.
    ///
    /// # Errors
    ///
    /// When there are no creditors or their IDs overflow.
    pub fn new(
        currencies: Arc<Currencies>,
        count: usize,
        first_creditor_id: i64,
        min_trade_amount: i64,
        seed: u64,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(count >= 2, "at least 2 creditors are needed, not {count}");
        anyhow::ensure!(
            first_creditor_id.checked_add(count as i64).is_some(),
            "the creditor IDs overflow"
        );
        anyhow::ensure!(
            min_trade_amount > 0,
            "the minimum trade amount must be positive"
        );
        let creditors: Vec<Creditor> = (0..count)
            .map(|i| Creditor {
                creditor_id: first_creditor_id + i as i64,
                holdings: BTreeMap::new(),
            })
            .collect();
        let index = creditors
            .iter()
            .enumerate()
            .map(|(i, c)| (c.creditor_id, i))
            .collect();
        Ok(Self {
            currencies,
            creditors,
            index,
            rng: StdRng::seed_from_u64(seed),
            min_trade_amount,
            last_update_id: 0,
            issued: BTreeMap::new(),
        })
    }

    /// Whether `creditor_id` is one of the simulated creditors.
    pub fn is_creditor(&self, creditor_id: i64) -> bool {
        self.index.contains_key(&creditor_id)
    }

    /// The creditors' IDs.
    pub fn creditor_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.creditors.iter().map(|c| c.creditor_id)
    }

    /// A new update ID: increasing, and above the microseconds since 1970, so that the
    /// workers take the updates of a new run of the simulator over those of an earlier one.
    fn next_update_id(&mut self, now: DateTime<Utc>) -> i64 {
        self.last_update_id = (self.last_update_id + 1).max(now.timestamp_micros());
        self.last_update_id
    }

    /// Opens every creditor's first two accounts, with their opening balances, at the
    /// authority; returns the agent's messages about them.
    pub fn open_initial_accounts(
        &mut self,
        aa: &mut Authority,
        now: DateTime<Utc>,
    ) -> Vec<IncomingMessage> {
        let n = self.currencies.list.len();
        let worth =
            INITIAL_TRADES_WORTH * self.min_trade_amount as f64 * self.currencies.max_price();
        let mut messages = Vec::new();
        for ci in 0..self.creditors.len() {
            let first = self.rng.random_range(0..n);
            let second = (first + self.rng.random_range(1..n)) % n;
            for k in [first, second] {
                let currency = &self.currencies.list[k];
                let principal = (worth / f64::from(currency.price)).round() as i64;
                let debtor_id = currency.debtor_id;
                *self.issued.entry(debtor_id).or_default() += i128::from(principal);
                messages.extend(self.open_account(aa, ci, debtor_id, principal, now));
            }
        }
        messages
    }

    /// Opens an account of creditor `ci` (unless it has one): ledger and flags.
    fn open_account(
        &mut self,
        aa: &mut Authority,
        ci: usize,
        debtor_id: i64,
        principal: i64,
        now: DateTime<Utc>,
    ) -> Vec<IncomingMessage> {
        let creditor_id = self.creditors[ci].creditor_id;
        if self.creditors[ci].holdings.contains_key(&debtor_id) {
            return Vec::new();
        }
        let account_id = creditor_id.to_string();
        // Transfer numbers start at the time of opening, in seconds: an account opened by a
        // later run of the simulator is then always newer than the ledger positions that the
        // workers recorded for the same account before (docs/turns.md#account-locks).
        let first_transfer_number = now.timestamp().max(0);
        aa.open_account(
            debtor_id,
            creditor_id,
            &account_id,
            principal,
            now.date_naive(),
            first_transfer_number,
        );
        self.creditors[ci].holdings.insert(
            debtor_id,
            Holding {
                principal,
                has_policy: false,
            },
        );
        let ledger = UpdatedLedger {
            debtor_id,
            creditor_id,
            update_id: self.next_update_id(now),
            account_id,
            creation_date: now.date_naive(),
            principal,
            last_transfer_number: first_transfer_number,
            ts: now,
        };
        let flags = UpdatedFlags {
            debtor_id,
            creditor_id,
            update_id: self.next_update_id(now),
            config_flags: 0,
            ts: now,
        };
        let policy = self.policy(creditor_id, debtor_id, None, now);
        vec![ledger.into(), flags.into(), policy.into()]
    }

    /// An `UpdatedPolicy`: with `range = Some((min, max))` a drawn policy pegged to the base,
    /// otherwise a cleared one.
    fn policy(
        &mut self,
        creditor_id: i64,
        debtor_id: i64,
        range: Option<(i64, i64)>,
        now: DateTime<Utc>,
    ) -> UpdatedPolicy {
        let update_id = self.next_update_id(now);
        let base = self.currencies.base().debtor_id;
        let price = self.currencies.get(debtor_id).map_or(1.0, |c| c.price);
        let peg = range.is_some() && debtor_id != base;
        let (min_principal, max_principal) = range.unwrap_or((0, i64::MAX));
        UpdatedPolicy {
            debtor_id,
            creditor_id,
            update_id,
            policy_name: range.map(|_| POLICY_NAME.to_owned()),
            min_principal,
            max_principal,
            peg_exchange_rate: peg.then_some(f64::from(price)),
            peg_debtor_id: peg.then_some(base),
            ts: now,
        }
    }

    /// A cleared policy (no bid) of any creditor's account, e.g. one left by an earlier run.
    pub fn clear_policy(
        &mut self,
        creditor_id: i64,
        debtor_id: i64,
        now: DateTime<Utc>,
    ) -> IncomingMessage {
        self.policy(creditor_id, debtor_id, None, now).into()
    }

    /// Draws every creditor's policies for the next turn; opens the accounts that the new
    /// buy policies need. Returns the messages to send and how many creditors will trade.
    pub fn draw_policies(
        &mut self,
        aa: &mut Authority,
        now: DateTime<Utc>,
    ) -> (Vec<IncomingMessage>, usize) {
        let n = self.currencies.list.len();
        let min_trade = self.min_trade_amount as f64;
        let mut messages = Vec::new();
        let mut trading = 0;
        for ci in 0..self.creditors.len() {
            let creditor_id = self.creditors[ci].creditor_id;
            // The currencies it holds enough of to sell.
            let sellable: Vec<usize> = self.creditors[ci]
                .holdings
                .iter()
                .filter_map(|(debtor_id, h)| {
                    let c = self.currencies.get(*debtor_id)?;
                    let k = (debtor_id - self.currencies.base().debtor_id) as usize;
                    (h.principal as f64 >= 3.0 * min_trade * LOCK_MARGIN && c.price > 0.0)
                        .then_some(k)
                })
                .collect();
            let mut plan: Vec<(i64, (i64, i64))> = Vec::new();
            if !sellable.is_empty() {
                let s = sellable[self.rng.random_range(0..sellable.len())];
                let b = (s + self.rng.random_range(1..n)) % n;
                let (sc, bc) = (&self.currencies.list[s], &self.currencies.list[b]);
                let (ps, pb) = (f64::from(sc.price), f64::from(bc.price));
                let mut value = self.rng.random_range(3.0..6.0) * min_trade * ps.max(pb);
                let held = self.creditors[ci].holdings[&sc.debtor_id].principal as f64;
                value = value.min(held / LOCK_MARGIN * ps);
                let sell = (value / ps).floor();
                let buy = (value / pb).floor();
                if sell >= 2.0 * min_trade && buy >= 2.0 * min_trade {
                    let (sd, bd) = (sc.debtor_id, bc.debtor_id);
                    messages.extend(self.open_account(aa, ci, bd, 0, now));
                    let holdings = &self.creditors[ci].holdings;
                    let sp = holdings[&sd].principal;
                    let bp = holdings[&bd].principal;
                    plan.push((sd, (0, sp - sell as i64)));
                    plan.push((bd, (bp.saturating_add(buy as i64), i64::MAX)));
                    trading += 1;
                }
            }
            let debtors: Vec<i64> = self.creditors[ci].holdings.keys().copied().collect();
            for debtor_id in debtors {
                let range = plan.iter().find(|(d, _)| *d == debtor_id).map(|(_, r)| *r);
                let had = self.creditors[ci].holdings[&debtor_id].has_policy;
                if range.is_none() && !had {
                    continue;
                }
                let policy = self.policy(creditor_id, debtor_id, range, now);
                messages.push(policy.into());
                self.creditors[ci]
                    .holdings
                    .get_mut(&debtor_id)
                    .expect("a holding")
                    .has_policy = range.is_some();
            }
        }
        (messages, trading)
    }

    /// The `UpdatedLedger` after a committed transfer of one of the creditors' accounts;
    /// `None` for accounts of others (collectors).
    pub fn ledger_update(&mut self, t: &AccountTransfer) -> Option<IncomingMessage> {
        let ci = *self.index.get(&t.creditor_id)?;
        let holding = self.creditors[ci].holdings.get_mut(&t.debtor_id)?;
        holding.principal = t.principal;
        let update_id = self.next_update_id(t.ts);
        Some(
            UpdatedLedger {
                debtor_id: t.debtor_id,
                creditor_id: t.creditor_id,
                update_id,
                account_id: t.creditor_id.to_string(),
                creation_date: t.creation_date,
                principal: t.principal,
                last_transfer_number: t.transfer_number,
                ts: t.ts,
            }
            .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::decode;

    fn agent(creditors: usize) -> (Agent, Authority) {
        let currencies = Arc::new(Currencies::draw(6, 1000, 3, 4433).unwrap());
        (
            Agent::new(currencies, creditors, 1, 1000, 9).unwrap(),
            Authority::default(),
        )
    }

    #[test]
    fn creditors_open_two_accounts_and_draw_one_sale_and_one_purchase() {
        let (mut agent, mut aa) = agent(50);
        let now = Utc::now();
        let opened = agent.open_initial_accounts(&mut aa, now);
        assert_eq!(opened.len(), 50 * 2 * 3);
        assert_eq!(aa.accounts().len(), 100);
        for (debtor_id, total) in &agent.issued {
            assert_eq!(aa.total(*debtor_id), *total);
        }
        let (messages, trading) = agent.draw_policies(&mut aa, now);
        assert_eq!(trading, 50, "every creditor can trade at the start");
        let mut sells = 0;
        let mut buys = 0;
        for m in &messages {
            // Every message is valid as the workers read it.
            decode(m.message_type(), &m.to_json()).unwrap();
            if let IncomingMessage::UpdatedPolicy(p) = m {
                if p.policy_name.is_none() {
                    continue;
                }
                let principal = aa.account(p.debtor_id, p.creditor_id).principal;
                if p.max_principal < principal {
                    sells += 1;
                    assert!(principal - p.max_principal >= 2000);
                } else {
                    buys += 1;
                    assert!(p.min_principal - principal >= 2000);
                    assert_eq!(p.max_principal, i64::MAX);
                }
                let base = 1000;
                assert_eq!(p.peg_debtor_id.is_some(), p.debtor_id != base);
            }
        }
        assert_eq!((sells, buys), (50, 50));
        // Update IDs only grow.
        let ids: Vec<i64> = messages
            .iter()
            .filter_map(|m| match m {
                IncomingMessage::UpdatedPolicy(p) => Some(p.update_id),
                _ => None,
            })
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_second_draw_clears_the_policies_it_does_not_renew() {
        let (mut agent, mut aa) = agent(20);
        let now = Utc::now();
        agent.open_initial_accounts(&mut aa, now);
        agent.draw_policies(&mut aa, now);
        let (messages, _) = agent.draw_policies(&mut aa, now);
        let mut set: BTreeMap<i64, usize> = BTreeMap::new();
        for m in &messages {
            if let IncomingMessage::UpdatedPolicy(p) = m
                && p.policy_name.is_some()
            {
                *set.entry(p.creditor_id).or_default() += 1;
            }
        }
        assert!(set.values().all(|&n| n == 2));
        for c in &agent.creditors {
            let with_policy = c.holdings.values().filter(|h| h.has_policy).count();
            assert_eq!(with_policy, 2, "creditor {}", c.creditor_id);
        }
    }

    #[test]
    fn ledgers_follow_the_transfers_of_the_creditors_only() {
        let (mut agent, mut aa) = agent(2);
        let now = Utc::now();
        agent.open_initial_accounts(&mut aa, now);
        let (&debtor_id, _) = agent.creditors[0].holdings.iter().next().unwrap();
        let t = AccountTransfer {
            debtor_id,
            creditor_id: 1,
            creation_date: now.date_naive(),
            transfer_number: 7,
            coordinator_type: "agent".into(),
            sender: "1".into(),
            recipient: "x".into(),
            acquired_amount: -5,
            transfer_note_format: String::new(),
            transfer_note: String::new(),
            committed_at: now,
            principal: 12,
            ts: now,
            previous_transfer_number: 6,
        };
        let Some(IncomingMessage::UpdatedLedger(l)) = agent.ledger_update(&t) else {
            panic!("a ledger update")
        };
        assert_eq!((l.principal, l.last_transfer_number), (12, 7));
        let other = AccountTransfer {
            creditor_id: 0x0000_0100_0000_0001,
            ..t
        };
        assert!(agent.ledger_update(&other).is_none());
    }
}
