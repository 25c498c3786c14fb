//! A stand-in accounting authority of every currency: it keeps the accounts' balances and
//! answers the three SMP requests a worker sends (`ConfigureAccount`, `PrepareTransfer`,
//! `FinalizeTransfer`) the way the Swaptacular Messaging Protocol describes, with
//! `AccountUpdate`, `PreparedTransfer`, `RejectedTransfer`, `FinalizedTransfer` and
//! `AccountTransfer` messages (docs/messages.md#smp-messages-from-accounting-authorities).
//!
//! It is idempotent as an accounting authority must be: a repeated `PrepareTransfer` (same
//! coordinator ID and coordinator request ID) gets the same answer again, and a
//! `FinalizeTransfer` of an unknown or already finalized transfer is ignored.
//!
//! Balances are principals, moved only by committed transfers and kept exactly. The interest
//! rate ([`Authority::interest_rate`]) is announced — in every `AccountUpdate` and, as the
//! demurrage rate, in every `PreparedTransfer` — so that the workers discount their transfers
//! for it, but it is never charged: every unit of a currency stays accounted for.
//!
//! The authority is pure (no I/O): `swpt-trade simulate` runs it behind RabbitMQ, the
//! integration tests call it directly.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};

use crate::messages::{
    AccountTransfer, AccountUpdate, ConfigureAccount, FinalizeTransfer, FinalizedTransfer,
    IncomingMessage, OutgoingMessage, PrepareTransfer, PreparedTransfer, RejectedTransfer,
};

/// The default `MIN_COLLECTOR_ID` and `MAX_COLLECTOR_ID`.
pub const MIN_COLLECTOR_ID: i64 = 0x0000_0100_0000_0000;
pub const MAX_COLLECTOR_ID: i64 = 0x0000_0100_0000_07ff;

/// Whether `creditor_id` is a collector account (in the default collector ID range).
pub fn is_collector(creditor_id: i64) -> bool {
    (MIN_COLLECTOR_ID..=MAX_COLLECTOR_ID).contains(&creditor_id)
}

/// The media type of the debtor info documents the authority names.
pub const DEBTOR_INFO_CONTENT_TYPE: &str = "application/vnd.swaptacular.coin-info+json";

/// The configuration of an account, as the last applied `ConfigureAccount` set it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountConfig {
    pub ts: DateTime<Utc>,
    pub seqnum: i32,
    pub negligible_amount: f64,
    pub config_data: String,
    pub config_flags: i32,
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
    /// Set for accounts created or configured with `ConfigureAccount`: only those get
    /// `AccountUpdate` messages (the others belong to the Creditors Agent).
    pub config: Option<AccountConfig>,
    /// The latest change of the account (`last_change_ts`, `last_change_seqnum`).
    pub last_change: (DateTime<Utc>, i32),
    /// When the last transfer was committed (the creation time before any).
    pub last_transfer_committed_at: DateTime<Utc>,
    /// The balance changed since the last `AccountUpdate`.
    pub changed: bool,
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
    /// When it was finalized.
    pub finalized_at: Option<DateTime<Utc>>,
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
    /// Knob: answer `ConfigureAccount` (create the account, send `AccountUpdate`). Off, a
    /// `ConfigureAccount` is only counted, for networks whose accounts are opened beforehand.
    pub answer_configurations: bool,
    /// The `interest_rate` announced in every `AccountUpdate` (percent a year).
    pub interest_rate: f64,
    /// The `commit_period` of every `AccountUpdate` (seconds).
    pub commit_period: i32,
    /// The `transfer_note_max_bytes` of every `AccountUpdate`.
    pub transfer_note_max_bytes: i32,
    /// The `ttl` of every `AccountUpdate` (seconds).
    pub account_update_ttl: i32,
    /// The debtor info IRI of each currency, named in its accounts' `AccountUpdate`s.
    pub debtor_info_iris: HashMap<i64, String>,
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
            answer_configurations: false,
            interest_rate: 0.0,
            commit_period: 31 * 86_400,
            transfer_note_max_bytes: 500,
            account_update_ttl: 86_400,
            debtor_info_iris: HashMap::new(),
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
        let created_at = creation_date.and_time(chrono::NaiveTime::MIN).and_utc();
        let previous = self.accounts.insert(
            (debtor_id, creditor_id),
            Account {
                account_id: account_id.into(),
                principal,
                locked: 0,
                creation_date,
                last_transfer_number,
                config: None,
                last_change: (created_at, 0),
                last_transfer_committed_at: created_at,
                changed: false,
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

    /// Whether `(debtor_id, creditor_id)` has an account.
    pub fn has_account(&self, debtor_id: i64, creditor_id: i64) -> bool {
        self.accounts.contains_key(&(debtor_id, creditor_id))
    }

    /// Opens an account that the service configured earlier (a collector account of a
    /// previous run, say): zero balance, configured now, account ID `account_id`. Nothing
    /// happens when the account exists.
    pub fn restore_configured_account(
        &mut self,
        debtor_id: i64,
        creditor_id: i64,
        account_id: &str,
        now: DateTime<Utc>,
    ) {
        if self.has_account(debtor_id, creditor_id)
            || self
                .account_ids
                .contains_key(&(debtor_id, account_id.to_owned()))
        {
            return;
        }
        self.open_account(debtor_id, creditor_id, account_id, 0, now.date_naive(), 0);
        let account = self.accounts.get_mut(&(debtor_id, creditor_id)).unwrap();
        account.config = Some(AccountConfig {
            ts: now,
            seqnum: 0,
            negligible_amount: 0.0,
            config_data: String::new(),
            config_flags: 0,
        });
        account.last_change = (now, 1);
        account.last_transfer_committed_at = now;
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

    /// The sum of every account's principal, per currency.
    pub fn totals(&self) -> BTreeMap<i64, i128> {
        let mut totals = BTreeMap::new();
        for ((debtor_id, _), a) in &self.accounts {
            *totals.entry(*debtor_id).or_default() += i128::from(a.principal);
        }
        totals
    }

    /// Takes the commits recorded so far (a long-running authority drains them, so that they
    /// do not pile up).
    pub fn drain_commits(&mut self) -> Vec<Commit> {
        std::mem::take(&mut self.commits)
    }

    /// Forgets the transfers finalized before `before`, and the answers to their requests
    /// (a real authority deletes finalized transfers too).
    pub fn forget_finalized_before(&mut self, before: DateTime<Utc>) -> usize {
        let old: Vec<(i64, (i64, i64))> = self
            .transfers
            .values()
            .filter(|t| t.finalized_at.is_some_and(|at| at < before))
            .map(|t| (t.transfer_id, (t.coordinator_id, t.coordinator_request_id)))
            .collect();
        for (transfer_id, request) in &old {
            self.transfers.remove(transfer_id);
            if matches!(self.answers.get(request), Some(Answer::Prepared(id)) if id == transfer_id)
            {
                self.answers.remove(request);
            }
        }
        old.len()
    }

    /// `AccountUpdate`s of the configured accounts: of every one when `heartbeat` (a
    /// heartbeat repeats the latest change with a newer `ts`), otherwise only of those whose
    /// balance changed since their last update (a new change).
    pub fn account_updates(&mut self, now: DateTime<Utc>, heartbeat: bool) -> Vec<IncomingMessage> {
        let keys: Vec<(i64, i64)> = self
            .accounts
            .iter()
            .filter(|(_, a)| a.config.is_some() && (heartbeat || a.changed))
            .map(|(k, _)| *k)
            .collect();
        let mut updates = Vec::with_capacity(keys.len());
        for (debtor_id, creditor_id) in keys {
            let account = self.accounts.get_mut(&(debtor_id, creditor_id)).unwrap();
            if account.changed {
                account.changed = false;
                account.last_change = next_change(account.last_change, now);
            }
            updates.push(self.account_update(debtor_id, creditor_id, now));
        }
        updates
    }

    /// The `AccountUpdate` of a configured account as it is now.
    fn account_update(
        &self,
        debtor_id: i64,
        creditor_id: i64,
        now: DateTime<Utc>,
    ) -> IncomingMessage {
        let a = &self.accounts[&(debtor_id, creditor_id)];
        let config = a.config.clone().unwrap_or(AccountConfig {
            ts: a.last_change.0,
            seqnum: 0,
            negligible_amount: 0.0,
            config_data: String::new(),
            config_flags: 0,
        });
        let iri = self
            .debtor_info_iris
            .get(&debtor_id)
            .cloned()
            .unwrap_or_default();
        IncomingMessage::AccountUpdate(AccountUpdate {
            debtor_id,
            creditor_id,
            creation_date: a.creation_date,
            last_change_ts: a.last_change.0,
            last_change_seqnum: a.last_change.1,
            principal: a.principal,
            interest: 0.0,
            interest_rate: self.interest_rate,
            last_interest_rate_change_ts: a
                .creation_date
                .and_time(chrono::NaiveTime::MIN)
                .and_utc(),
            last_config_ts: config.ts,
            last_config_seqnum: config.seqnum,
            negligible_amount: config.negligible_amount,
            config_flags: config.config_flags,
            config_data: config.config_data,
            account_id: a.account_id.clone(),
            debtor_info_content_type: if iri.is_empty() {
                String::new()
            } else {
                DEBTOR_INFO_CONTENT_TYPE.to_owned()
            },
            debtor_info_iri: iri,
            debtor_info_sha256: String::new(),
            last_transfer_number: a.last_transfer_number,
            last_transfer_committed_at: a.last_transfer_committed_at,
            demurrage_rate: self.demurrage_rate,
            commit_period: self.commit_period,
            transfer_note_max_bytes: self.transfer_note_max_bytes,
            ts: now,
            ttl: self.account_update_ttl,
        })
    }

    /// `ConfigureAccount`: creates the account (zero balance, its creditor ID as account ID)
    /// or changes its configuration when the request is newer, and answers `AccountUpdate`.
    fn configure(&mut self, m: &ConfigureAccount, now: DateTime<Utc>) -> Vec<IncomingMessage> {
        if !self.answer_configurations {
            return Vec::new();
        }
        let key = (m.debtor_id, m.creditor_id);
        let config = AccountConfig {
            ts: m.ts,
            seqnum: m.seqnum,
            negligible_amount: m.negligible_amount,
            config_data: m.config_data.clone(),
            config_flags: m.config_flags,
        };
        match self.accounts.get_mut(&key) {
            None => {
                let account_id = m.creditor_id.to_string();
                self.open_account(
                    m.debtor_id,
                    m.creditor_id,
                    &account_id,
                    0,
                    now.date_naive(),
                    0,
                );
                let account = self.accounts.get_mut(&key).unwrap();
                account.config = Some(config);
                account.last_change = (now, 1);
                account.last_transfer_committed_at = now;
            }
            Some(account) => {
                let newer = account
                    .config
                    .as_ref()
                    .is_none_or(|old| (m.ts, m.seqnum) > (old.ts, old.seqnum));
                if newer {
                    account.config = Some(config);
                    account.last_change = next_change(account.last_change, now);
                }
            }
        }
        vec![self.account_update(m.debtor_id, m.creditor_id, now)]
    }

    /// Handles one request; returns the messages the authority sends back.
    pub fn handle(
        &mut self,
        message: &OutgoingMessage,
        now: DateTime<Utc>,
    ) -> Vec<IncomingMessage> {
        *self.received.entry(message.message_type()).or_default() += 1;
        match message {
            OutgoingMessage::ConfigureAccount(m) => self.configure(m, now),
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
                finalized_at: None,
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
        let finalized = self.transfers.get_mut(&t.transfer_id).unwrap();
        finalized.outcome = Some(outcome);
        finalized.finalized_at = Some(now);
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
            account.last_transfer_committed_at = now;
            account.changed = true;
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

/// The change after `last`: now, or a new sequence number when the clock has not moved.
fn next_change(last: (DateTime<Utc>, i32), now: DateTime<Utc>) -> (DateTime<Utc>, i32) {
    if now > last.0 {
        (now, last.1.wrapping_add(1))
    } else {
        (last.0, last.1.wrapping_add(1))
    }
}
