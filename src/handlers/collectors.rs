//! `NeededCollector` and `ActivateCollector`: planning and activating collector accounts in
//! the solver database (see `docs/turns.md#collector-accounts`).

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::{Context, HandlerError};
use crate::collectors::CollectorIds;
use crate::db::retry::{RetryPolicy, with_retries};
use crate::db::solver::collectors as solver_db;
use crate::db::worker::collectors as worker_db;
use crate::messages::{ActivateCollector, NeededCollector};

/// `NeededCollector`: unless done recently, makes sure the debtor has its collector accounts
/// planned in the solver database (its own transaction, idempotent: racing workers plan the
/// same IDs), then records that it was done (in the caller's transaction).
pub async fn needed_collector(
    conn: &mut AsyncPgConnection,
    context: &Context,
    m: &NeededCollector,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    if worker_db::is_recently_needed(conn, m.debtor_id).await? {
        return Ok(());
    }
    let ids = CollectorIds::from_config(&context.config);
    let solver = context.solver()?;
    with_retries(RetryPolicy::HANDLER, || async {
        let mut conn = solver.get().await?;
        conn.build_transaction()
            .repeatable_read()
            .run(async |conn| {
                let existing = solver_db::collectors_of(conn, m.debtor_id).await?;
                let alive = existing
                    .iter()
                    .filter(|(_, status)| *status != solver_db::STATUS_DISABLED)
                    .count();
                let ids_of_debtor: Vec<i64> = existing.iter().map(|(id, _)| *id).collect();
                let new = ids
                    .plan(m.debtor_id, &ids_of_debtor, alive)
                    .map_err(|e| HandlerError::Fatal(e.to_string()))?;
                solver_db::insert_pristine(conn, m.debtor_id, &new, now).await?;
                Ok::<_, HandlerError>(())
            })
            .await
    })
    .await?;
    worker_db::insert_recently_needed(conn, m.debtor_id, m.ts).await?;
    Ok(())
}

/// `ActivateCollector`: the collector account exists; its account ID goes to the solver
/// database, where the next turns find the collector.
pub async fn activate_collector(
    context: &Context,
    m: &ActivateCollector,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let solver = context.solver()?;
    let mut conn = solver.get().await?;
    solver_db::activate(&mut conn, m.debtor_id, m.creditor_id, &m.account_id, now).await?;
    Ok(())
}
