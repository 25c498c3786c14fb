//! What each incoming message does to the worker database (see
//! `docs/messages.md#incoming-messages`).
//!
//! [`handler`] decides, in one exhaustive `match`, which handler a message has (every type
//! has one). A handler runs inside a
//! transaction that the consumer opens (possibly together with other messages); it writes its
//! outgoing messages to the outbox in that same transaction. Every handler is idempotent and
//! tolerates reordering.

mod accounts;
mod collectors;
mod debtors;
mod locks;
mod transfers;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::config::Config;
use crate::db::retry::{self, Retryable};
use crate::db::worker::policies;
use crate::db::worker::transfers::Stage;
use crate::db::{PoolSettings, SolverPool};
use crate::messages::{
    AccountIdRequest, AccountIdResponse, AccountPurge, AccountTransfer, AccountUpdate,
    ActivateCollector, CandidateOffer, ConfirmDebtor, DiscoverDebtor, FetchDebtorInfo,
    FinalizedTransfer, IncomingMessage, NeededCollector, PreparedTransfer, RejectedConfig,
    RejectedTransfer, ReviseAccountLock, StartDispatching, StartSending, StoreDocument,
    TriggerTransfer, UpdatedFlags, UpdatedLedger, UpdatedPolicy,
};

/// What the handlers need besides the worker database connection of their transaction.
#[derive(Debug, Clone)]
pub struct Context {
    /// The settings.
    pub config: Arc<Config>,
    /// The solver database, where collector accounts are planned and activated; `None` when
    /// `SOLVER_POSTGRES_URL` is not set.
    pub solver: Option<SolverPool>,
}

impl Context {
    /// The handlers' context of `config`; the solver pool is opened lazily.
    ///
    /// # Errors
    ///
    /// A malformed `SOLVER_POSTGRES_URL`.
    pub fn new(config: Arc<Config>, command: &str) -> anyhow::Result<Self> {
        let solver = match &config.db.solver_url {
            Some(url) => {
                let size = config
                    .db
                    .solver_pool_size
                    .unwrap_or(config.db.engine_pool_size);
                let settings = PoolSettings::from_config(&config, size);
                Some(SolverPool::build(url, settings, command)?)
            }
            None => None,
        };
        Ok(Self { config, solver })
    }

    /// The solver database pool.
    ///
    /// # Errors
    ///
    /// When `SOLVER_POSTGRES_URL` is not set: the message stays in the queue.
    pub fn solver(&self) -> Result<&SolverPool, HandlerError> {
        self.solver.as_ref().ok_or_else(|| {
            HandlerError::Unavailable(crate::db::Unavailable {
                database: "solver",
                reason: "SOLVER_POSTGRES_URL is not set".into(),
            })
        })
    }
}

pub use accounts::{obsolete_interest_rate_changes, seqnum_after};

/// Why a handler failed. The message is then not acknowledged, so the broker delivers it
/// again — unless the failure is permanent (see [`HandlerError::is_permanent`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// A database error (retryable ones are retried by the caller).
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    /// No database connection could be had.
    #[error(transparent)]
    Unavailable(#[from] crate::db::Unavailable),
    /// A broken expectation that no retry can fix (the reference's fatal errors).
    #[error("{0}")]
    Fatal(String),
}

impl Retryable for HandlerError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if retry::is_retryable(e))
    }
}

impl HandlerError {
    /// Whether the database refused the message's data for good, so that handling it again
    /// cannot succeed (a poison message).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Db(e) if retry::is_permanent(e))
    }
}

/// The handler of a message: one variant per message type.
#[derive(Debug, Clone, Copy)]
pub enum Handler<'a> {
    /// `RejectedConfig`: logged.
    RejectedConfig(&'a RejectedConfig),
    /// `AccountUpdate`: a collector account's state.
    AccountUpdate(&'a AccountUpdate),
    /// `AccountPurge`: a collector account was deleted.
    AccountPurge(&'a AccountPurge),
    /// `UpdatedLedger`: a creditor's ledger (trading policy).
    UpdatedLedger(&'a UpdatedLedger),
    /// `UpdatedPolicy`: a creditor's trading policy.
    UpdatedPolicy(&'a UpdatedPolicy),
    /// `UpdatedFlags`: a creditor's trading flags.
    UpdatedFlags(&'a UpdatedFlags),
    /// `NeededCollector`: a debtor needs collector accounts.
    NeededCollector(&'a NeededCollector),
    /// `ActivateCollector`: a collector account has its account ID.
    ActivateCollector(&'a ActivateCollector),
    /// `FetchDebtorInfo`: schedules the fetch of a debtor info document.
    FetchDebtorInfo(&'a FetchDebtorInfo),
    /// `StoreDocument`: stores a fetched debtor info document.
    StoreDocument(&'a StoreDocument),
    /// `DiscoverDebtor`: an account names its debtor's info document.
    DiscoverDebtor(&'a DiscoverDebtor),
    /// `ConfirmDebtor`: a document confirmed its debtor's locator.
    ConfirmDebtor(&'a ConfirmDebtor),
    /// `CandidateOffer`: locks a customer account for a turn.
    CandidateOffer(&'a CandidateOffer),
    /// `PreparedTransfer`: an account lock's or a transfer attempt's transfer is prepared;
    /// any other is dismissed.
    PreparedTransfer(&'a PreparedTransfer),
    /// `RejectedTransfer`: an account lock's or a transfer attempt's transfer was refused.
    RejectedTransfer(&'a RejectedTransfer),
    /// `FinalizedTransfer`: a transfer attempt's transfer ended.
    FinalizedTransfer(&'a FinalizedTransfer),
    /// `AccountTransfer`: a committed turn transfer of one of the shard's accounts.
    AccountTransfer(&'a AccountTransfer),
    /// `ReviseAccountLock`: the solver's decision applied to an account lock.
    ReviseAccountLock(&'a ReviseAccountLock),
    /// `StartSending`: a collector's collecting is over.
    StartSending(&'a StartSending),
    /// `StartDispatching`: a collector's sending and receiving are over.
    StartDispatching(&'a StartDispatching),
    /// `AccountIdRequest`: a collector asks for a recipient's account ID.
    AccountIdRequest(&'a AccountIdRequest),
    /// `AccountIdResponse`: a recipient's account ID for a transfer attempt.
    AccountIdResponse(&'a AccountIdResponse),
    /// `TriggerTransfer`: a transfer attempt's back-off pause is over.
    TriggerTransfer(&'a TriggerTransfer),
}

/// The handler of `message`.
pub fn handler(message: &IncomingMessage) -> Handler<'_> {
    use IncomingMessage as M;
    match message {
        M::RejectedConfig(m) => Handler::RejectedConfig(m),
        M::AccountUpdate(m) => Handler::AccountUpdate(m),
        M::AccountPurge(m) => Handler::AccountPurge(m),
        M::UpdatedLedger(m) => Handler::UpdatedLedger(m),
        M::UpdatedPolicy(m) => Handler::UpdatedPolicy(m),
        M::UpdatedFlags(m) => Handler::UpdatedFlags(m),
        M::NeededCollector(m) => Handler::NeededCollector(m),
        M::ActivateCollector(m) => Handler::ActivateCollector(m),
        M::FetchDebtorInfo(m) => Handler::FetchDebtorInfo(m),
        M::StoreDocument(m) => Handler::StoreDocument(m),
        M::DiscoverDebtor(m) => Handler::DiscoverDebtor(m),
        M::ConfirmDebtor(m) => Handler::ConfirmDebtor(m),
        M::CandidateOffer(m) => Handler::CandidateOffer(m),
        M::PreparedTransfer(m) => Handler::PreparedTransfer(m),
        M::RejectedTransfer(m) => Handler::RejectedTransfer(m),
        M::FinalizedTransfer(m) => Handler::FinalizedTransfer(m),
        M::AccountTransfer(m) => Handler::AccountTransfer(m),
        M::ReviseAccountLock(m) => Handler::ReviseAccountLock(m),
        M::StartSending(m) => Handler::StartSending(m),
        M::StartDispatching(m) => Handler::StartDispatching(m),
        M::AccountIdRequest(m) => Handler::AccountIdRequest(m),
        M::AccountIdResponse(m) => Handler::AccountIdResponse(m),
        M::TriggerTransfer(m) => Handler::TriggerTransfer(m),
    }
}

impl Handler<'_> {
    /// Applies the message within the caller's transaction; `now` is the handler's clock.
    pub async fn run(
        self,
        conn: &mut AsyncPgConnection,
        context: &Context,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let config = &*context.config;
        match self {
            Self::RejectedConfig(m) => {
                accounts::rejected_config(m);
                Ok(())
            }
            Self::AccountUpdate(m) => accounts::account_update(conn, config, m, now).await,
            Self::AccountPurge(m) => accounts::account_purge(conn, m).await,
            Self::UpdatedLedger(m) => Ok(policies::updated_ledger(conn, m).await?),
            Self::UpdatedPolicy(m) => Ok(policies::updated_policy(conn, m).await?),
            Self::UpdatedFlags(m) => Ok(policies::updated_flags(conn, m).await?),
            Self::NeededCollector(m) => collectors::needed_collector(conn, context, m, now).await,
            Self::ActivateCollector(m) => collectors::activate_collector(context, m, now).await,
            Self::FetchDebtorInfo(m) => debtors::fetch_debtor_info(conn, m, now).await,
            Self::StoreDocument(m) => debtors::store_document(conn, m).await,
            Self::DiscoverDebtor(m) => debtors::discover_debtor(conn, config, m, now).await,
            Self::ConfirmDebtor(m) => debtors::confirm_debtor(conn, config, m, now).await,
            Self::CandidateOffer(m) => locks::candidate_offer(conn, config, m, now).await,
            Self::PreparedTransfer(m) => transfers::prepared_transfer(conn, config, m, now).await,
            Self::RejectedTransfer(m) => transfers::rejected_transfer(conn, config, m, now).await,
            Self::FinalizedTransfer(m) => transfers::finalized_transfer(conn, config, m, now).await,
            Self::AccountTransfer(m) => transfers::account_transfer(conn, config, m, now).await,
            Self::ReviseAccountLock(m) => locks::revise_account_lock(conn, m, now).await,
            Self::StartSending(m) => {
                let key = transfers::status_key(m.collector_id, m.turn_id, m.debtor_id);
                transfers::start_stage(conn, key, Stage::Sending, now).await
            }
            Self::StartDispatching(m) => {
                let key = transfers::status_key(m.collector_id, m.turn_id, m.debtor_id);
                transfers::start_stage(conn, key, Stage::Dispatching, now).await
            }
            Self::AccountIdRequest(m) => transfers::account_id_request_handler(conn, m, now).await,
            Self::AccountIdResponse(m) => {
                transfers::account_id_response(conn, config, m, now).await
            }
            Self::TriggerTransfer(m) => transfers::trigger_transfer(conn, config, m, now).await,
        }
    }
}
