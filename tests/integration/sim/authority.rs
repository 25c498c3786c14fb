//! A stand-in accounting authority: it keeps the accounts' balances and answers the three SMP
//! requests a worker sends (`ConfigureAccount`, `PrepareTransfer`, `FinalizeTransfer`) the way
//! the Swaptacular Messaging Protocol describes, with `PreparedTransfer`, `RejectedTransfer`,
//! `FinalizedTransfer` and `AccountTransfer` messages.
//!
//! It is idempotent as an accounting authority must be: a repeated `PrepareTransfer` (same
//! coordinator ID and coordinator request ID) gets the same answer again, and a
//! `FinalizeTransfer` of an unknown or already finalized transfer is ignored.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use swpt_trade::messages::{
    AccountTransfer, FinalizeTransfer, FinalizedTransfer, IncomingMessage, OutgoingMessage,
    PrepareTransfer, PreparedTransfer, RejectedTransfer,
};

/// The default `MIN_COLLECTOR_ID` and `MAX_COLLECTOR_ID`.
pub const MIN_COLLECTOR_ID: i64 = 0x0000_0100_0000_0000;
pub const MAX_COLLECTOR_ID: i64 = 0x0000_0100_0000_07ff;

/// Whether `creditor_id` is a collector account (in the default collector ID range).
pub fn is_collector(creditor_id: i64) -> bool {
    (MIN_COLLECTOR_ID..=MAX_COLLECTOR_ID).contains(&creditor_id)
}

/// An account at the authority.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub account_id: String,
    pub principal: i64,
    /// The sum of the amounts locked by open (prepared, not finalized) transfers.
    pub locked: i64,
    pub creation_date: NaiveDate,
    pub last_transfer_number: i64,
}

/// How a prepared transfer ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finalized with a committed amount of zero.
    Dismissed,
    /// Committed: the amount moved.
    Committed(i64),
    /// The commit was refused (the status code of the `FinalizedTransfer`).
    Failed(String),
}

/// A transfer prepared by the authority.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub transfer_id: i64,
    pub debtor_id: i64,
    pub creditor_id: i64,
    pub coordinator_id: i64,
    pub coordinator_request_id: i64,
    pub recipient: String,
    pub locked_amount: i64,
    pub prepared_at: DateTime<Utc>,
    /// `None` while the transfer is open.
    pub outcome: Option<Outcome>,
}

/// A committed transfer: money moved from one account to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub debtor_id: i64,
    pub from: i64,
    pub to: i64,
    pub amount: i64,
    pub transfer_note_format: String,
    pub transfer_note: String,
    pub transfer_id: i64,
    pub coordinator_request_id: i64,
}

/// The answer to a `PrepareTransfer`, remembered for repetitions.
#[derive(Debug, Clone)]
enum Answer {
    Prepared(i64),
    Rejected { status_code: String },
}

/// The stand-in accounting authority of every currency.
pub struct Authority {
    accounts: BTreeMap<(i64, i64), Account>,
    /// `(debtor_id, account_id)` → creditor ID.
    account_ids: HashMap<(i64, String), i64>,
    transfers: BTreeMap<i64, Transfer>,
    /// `(coordinator_id, coordinator_request_id)` → answer.
    answers: HashMap<(i64, i64), Answer>,
    next_transfer_id: i64,
    /// Every committed transfer, in commit order.
    pub commits: Vec<Commit>,
    /// Knob: how many of the next `PrepareTransfer`s coordinated by a collector to reject
    /// with [`Authority::rejection_code`].
    pub reject_collector_prepares: usize,
    /// Knob: the status code of those rejections.
    pub rejection_code: String,
    /// Knob: the `demurrage_rate` of every `PreparedTransfer`.
    pub demurrage_rate: f64,
    /// Knob: forget a request once its transfer is finalized, as an authority that deletes
    /// finalized transfers does: a late repetition of the `PrepareTransfer` then prepares a
    /// new transfer (which the worker must dismiss).
    pub forget_finalized: bool,
    /// Transfers prepared again for a forgotten request.
    pub prepared_again: usize,
    /// Every rejection sent: `(debtor_id, creditor_id, coordinator_request_id, status_code)`.
    pub rejections: Vec<(i64, i64, i64, String)>,
    /// Requests received, by message type.
    pub received: BTreeMap<&'static str, usize>,
    /// `FinalizeTransfer`s of unknown or already finalized transfers (ignored).
    pub ignored_finalizations: usize,
}

impl Default for Authority {
    fn default() -> Self {
        Self {
            accounts: BTreeMap::new(),
            account_ids: HashMap::new(),
            transfers: BTreeMap::new(),
            answers: HashMap::new(),
            next_transfer_id: 1000,
            commits: Vec::new(),
            reject_collector_prepares: 0,
            rejection_code: "TIMEOUT".into(),
            demurrage_rate: 0.0,
            forget_finalized: false,
            prepared_again: 0,
            rejections: Vec::new(),
            received: BTreeMap::new(),
            ignored_finalizations: 0,
        }
    }
}

/// The deadline of every prepared transfer: far beyond any collection deadline.
fn far_deadline() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).unwrap()
}

impl Authority {
    /// Opens an account with a balance.
    pub fn open_account(
        &mut self,
        debtor_id: i64,
        creditor_id: i64,
        account_id: &str,
        principal: i64,
        creation_date: NaiveDate,
        last_transfer_number: i64,
    ) {
        let previous = self.accounts.insert(
            (debtor_id, creditor_id),
            Account {
                account_id: account_id.into(),
                principal,
                locked: 0,
                creation_date,
                last_transfer_number,
            },
        );
        assert!(
            previous.is_none(),
            "account ({debtor_id}, {creditor_id}) opened twice"
        );
        let clash = self
            .account_ids
            .insert((debtor_id, account_id.into()), creditor_id);
        assert!(clash.is_none(), "account ID {account_id} used twice");
    }

    /// The account of `(debtor_id, creditor_id)`.
    pub fn account(&self, debtor_id: i64, creditor_id: i64) -> &Account {
        self.accounts
            .get(&(debtor_id, creditor_id))
            .unwrap_or_else(|| panic!("no account ({debtor_id}, {creditor_id}) at the authority"))
    }

    /// Every account: `(debtor_id, creditor_id)` → account.
    pub fn accounts(&self) -> &BTreeMap<(i64, i64), Account> {
        &self.accounts
    }

    /// Every prepared transfer, by transfer ID.
    pub fn transfers(&self) -> &BTreeMap<i64, Transfer> {
        &self.transfers
    }

    /// The transfer prepared for `(coordinator_id, coordinator_request_id)`, if any.
    pub fn transfer_of_request(
        &self,
        coordinator_id: i64,
        coordinator_request_id: i64,
    ) -> Option<&Transfer> {
        match self
            .answers
            .get(&(coordinator_id, coordinator_request_id))?
        {
            Answer::Prepared(id) => self.transfers.get(id),
            Answer::Rejected { .. } => None,
        }
    }

    /// The transfers still open (prepared, not finalized).
    pub fn open_transfers(&self) -> Vec<&Transfer> {
        self.transfers
            .values()
            .filter(|t| t.outcome.is_none())
            .collect()
    }

    /// The sum of every account's principal in a currency.
    pub fn total(&self, debtor_id: i64) -> i128 {
        self.accounts
            .iter()
            .filter(|((d, _), _)| *d == debtor_id)
            .map(|(_, a)| i128::from(a.principal))
            .sum()
    }

    /// Handles one request; returns the messages the authority sends back.
    pub fn handle(
        &mut self,
        message: &OutgoingMessage,
        now: DateTime<Utc>,
    ) -> Vec<IncomingMessage> {
        *self.received.entry(message.message_type()).or_default() += 1;
        match message {
            OutgoingMessage::ConfigureAccount(_) => Vec::new(),
            OutgoingMessage::PrepareTransfer(m) => vec![self.prepare(m, now)],
            OutgoingMessage::FinalizeTransfer(m) => self.finalize(m, now),
            other => panic!(
                "the authority received an internal message: {}",
                other.message_type()
            ),
        }
    }

    fn prepare(&mut self, m: &PrepareTransfer, now: DateTime<Utc>) -> IncomingMessage {
        let key = (m.creditor_id, m.coordinator_request_id);
        let forgotten = match self.answers.get(&key) {
            Some(Answer::Prepared(id)) => {
                self.forget_finalized && self.transfers[id].outcome.is_some()
            }
            _ => false,
        };
        if forgotten {
            self.answers.remove(&key);
            self.prepared_again += 1;
        }
        let answer = match self.answers.get(&key) {
            Some(answer) => answer.clone(),
            None => {
                let answer = self.new_answer(m, now);
                self.answers.insert(key, answer.clone());
                answer
            }
        };
        match answer {
            Answer::Prepared(transfer_id) => {
                let t = &self.transfers[&transfer_id];
                IncomingMessage::PreparedTransfer(PreparedTransfer {
                    debtor_id: t.debtor_id,
                    creditor_id: t.creditor_id,
                    coordinator_type: "agent".into(),
                    coordinator_id: t.coordinator_id,
                    coordinator_request_id: t.coordinator_request_id,
                    transfer_id,
                    locked_amount: t.locked_amount,
                    recipient: t.recipient.clone(),
                    prepared_at: t.prepared_at,
                    demurrage_rate: self.demurrage_rate,
                    deadline: far_deadline(),
                    final_interest_rate_ts: m.final_interest_rate_ts,
                    ts: now,
                })
            }
            Answer::Rejected { status_code } => {
                let total_locked_amount = self
                    .accounts
                    .get(&(m.debtor_id, m.creditor_id))
                    .map_or(0, |a| a.locked);
                IncomingMessage::RejectedTransfer(RejectedTransfer {
                    debtor_id: m.debtor_id,
                    creditor_id: m.creditor_id,
                    coordinator_type: "agent".into(),
                    coordinator_id: m.creditor_id,
                    coordinator_request_id: m.coordinator_request_id,
                    status_code,
                    total_locked_amount,
                    ts: now,
                })
            }
        }
    }

    /// The answer to a new `PrepareTransfer` request.
    fn new_answer(&mut self, m: &PrepareTransfer, now: DateTime<Utc>) -> Answer {
        let mut reject = |code: &str| {
            self.rejections.push((
                m.debtor_id,
                m.creditor_id,
                m.coordinator_request_id,
                code.to_owned(),
            ));
            Answer::Rejected {
                status_code: code.to_owned(),
            }
        };
        if is_collector(m.creditor_id) && self.reject_collector_prepares > 0 {
            self.reject_collector_prepares -= 1;
            let code = self.rejection_code.clone();
            return reject(&code);
        }
        if !self.accounts.contains_key(&(m.debtor_id, m.creditor_id)) {
            return reject("SENDER_IS_UNREACHABLE");
        }
        if !self
            .account_ids
            .contains_key(&(m.debtor_id, m.recipient.clone()))
        {
            return reject("RECIPIENT_IS_UNREACHABLE");
        }
        let account = self
            .accounts
            .get_mut(&(m.debtor_id, m.creditor_id))
            .unwrap();
        let available = account.principal - account.locked;
        if available < m.min_locked_amount {
            return reject("INSUFFICIENT_AVAILABLE_AMOUNT");
        }
        let locked_amount = m.max_locked_amount.min(available).max(0);
        account.locked += locked_amount;
        let transfer_id = self.next_transfer_id;
        self.next_transfer_id += 1;
        self.transfers.insert(
            transfer_id,
            Transfer {
                transfer_id,
                debtor_id: m.debtor_id,
                creditor_id: m.creditor_id,
                coordinator_id: m.creditor_id,
                coordinator_request_id: m.coordinator_request_id,
                recipient: m.recipient.clone(),
                locked_amount,
                prepared_at: now,
                outcome: None,
            },
        );
        Answer::Prepared(transfer_id)
    }

    fn finalize(&mut self, m: &FinalizeTransfer, now: DateTime<Utc>) -> Vec<IncomingMessage> {
        let Some(t) = self.transfers.get(&m.transfer_id) else {
            self.ignored_finalizations += 1;
            return Vec::new();
        };
        if t.outcome.is_some()
            || t.debtor_id != m.debtor_id
            || t.creditor_id != m.creditor_id
            || t.coordinator_id != m.coordinator_id
            || t.coordinator_request_id != m.coordinator_request_id
        {
            self.ignored_finalizations += 1;
            return Vec::new();
        }
        let t = t.clone();
        let sender_key = (t.debtor_id, t.creditor_id);
        let sender = self.accounts.get_mut(&sender_key).unwrap();
        sender.locked -= t.locked_amount;
        // What may be committed: the locked amount, plus what the account has available.
        let available = sender.principal - sender.locked;
        let recipient = self
            .account_ids
            .get(&(t.debtor_id, t.recipient.clone()))
            .copied();
        let (outcome, status_code, committed_amount) = if m.committed_amount == 0 {
            (Outcome::Dismissed, "OK", 0)
        } else if recipient.is_none() {
            (
                Outcome::Failed("RECIPIENT_IS_UNREACHABLE".into()),
                "RECIPIENT_IS_UNREACHABLE",
                0,
            )
        } else if m.committed_amount > available {
            (
                Outcome::Failed("INSUFFICIENT_AVAILABLE_AMOUNT".into()),
                "INSUFFICIENT_AVAILABLE_AMOUNT",
                0,
            )
        } else {
            (
                Outcome::Committed(m.committed_amount),
                "OK",
                m.committed_amount,
            )
        };
        let total_locked_amount = self.accounts[&sender_key].locked;
        self.transfers.get_mut(&t.transfer_id).unwrap().outcome = Some(outcome);
        let mut replies = vec![IncomingMessage::FinalizedTransfer(FinalizedTransfer {
            debtor_id: t.debtor_id,
            creditor_id: t.creditor_id,
            coordinator_type: "agent".into(),
            coordinator_id: t.coordinator_id,
            coordinator_request_id: t.coordinator_request_id,
            transfer_id: t.transfer_id,
            committed_amount,
            status_code: status_code.into(),
            total_locked_amount,
            prepared_at: t.prepared_at,
            ts: now,
        })];
        if committed_amount > 0 {
            let to = recipient.unwrap();
            replies.extend(self.commit(&t, m, to, committed_amount, now));
        }
        replies
    }

    /// Moves `amount` and tells both accounts with an `AccountTransfer`.
    fn commit(
        &mut self,
        t: &Transfer,
        m: &FinalizeTransfer,
        to: i64,
        amount: i64,
        now: DateTime<Utc>,
    ) -> Vec<IncomingMessage> {
        self.commits.push(Commit {
            debtor_id: t.debtor_id,
            from: t.creditor_id,
            to,
            amount,
            transfer_note_format: m.transfer_note_format.clone(),
            transfer_note: m.transfer_note.clone(),
            transfer_id: t.transfer_id,
            coordinator_request_id: t.coordinator_request_id,
        });
        let sender_account_id = self.accounts[&(t.debtor_id, t.creditor_id)]
            .account_id
            .clone();
        let mut messages = Vec::new();
        for (creditor_id, acquired_amount) in [(t.creditor_id, -amount), (to, amount)] {
            let account = self.accounts.get_mut(&(t.debtor_id, creditor_id)).unwrap();
            account.principal += acquired_amount;
            let previous_transfer_number = account.last_transfer_number;
            account.last_transfer_number += 1;
            messages.push(IncomingMessage::AccountTransfer(AccountTransfer {
                debtor_id: t.debtor_id,
                creditor_id,
                creation_date: account.creation_date,
                transfer_number: account.last_transfer_number,
                coordinator_type: "agent".into(),
                sender: sender_account_id.clone(),
                recipient: t.recipient.clone(),
                acquired_amount,
                transfer_note_format: m.transfer_note_format.clone(),
                transfer_note: m.transfer_note.clone(),
                committed_at: now,
                principal: account.principal,
                ts: now,
                previous_transfer_number,
            }));
        }
        messages
    }
}
