//! Collector accounts: the service's own accounts, one or more per currency, through which
//! the money of a turn moves (see `docs/turns.md#collector-accounts`).
//!
//! A worker that needs collectors for a debtor creates planned rows in the solver database
//! with IDs drawn deterministically from the debtor ID ([`pyrandom`]); the worker of each
//! collector's shard then asks the accounting authority to create the account
//! (`handle_pristine_collectors`), and activates it when the authority reports its account ID.

pub mod pristine;
pub mod pyrandom;

/// The collector IDs the worker may use (`MIN_COLLECTOR_ID`..=`MAX_COLLECTOR_ID`) and how
/// many collectors each debtor gets (`DEFAULT_NUMBER_OF_COLLECTOR_ACCOUNTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorIds {
    /// The smallest collector ID.
    pub min: i64,
    /// The largest collector ID.
    pub max: i64,
    /// Collectors per debtor that are not disabled.
    pub per_debtor: u32,
}

/// Why no more collector IDs could be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The number of available collector IDs is not big enough.")]
pub struct NotEnoughCollectorIds;

impl CollectorIds {
    /// The IDs of `config`.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            min: config.worker.min_collector_id,
            max: config.worker.max_collector_id,
            per_debtor: config.worker.default_number_of_collector_accounts,
        }
    }

    /// The new collector IDs for `debtor_id`, given the IDs it has (`existing`, of any status)
    /// of which `alive` are not disabled: the next IDs of the debtor's deterministic sequence
    /// that it does not have yet, until `per_debtor` are alive. Workers that race for the same
    /// debtor pick the same IDs.
    ///
    /// # Errors
    ///
    /// When `existing − alive + per_debtor` IDs would use more than three quarters of the
    /// range (the sequence would take too long to find free IDs).
    pub fn plan(
        &self,
        debtor_id: i64,
        existing: &[i64],
        alive: usize,
    ) -> Result<Vec<i64>, NotEnoughCollectorIds> {
        self.plan_up_to(debtor_id, existing, alive, self.per_debtor as usize)
    }

    /// [`CollectorIds::plan`] for `wanted` alive collectors instead of `per_debtor` (the admin
    /// API's `numberOfAccounts`).
    ///
    /// # Errors
    ///
    /// As [`CollectorIds::check_capacity`] for the dead IDs and `wanted`.
    pub fn plan_up_to(
        &self,
        debtor_id: i64,
        existing: &[i64],
        alive: usize,
        wanted: usize,
    ) -> Result<Vec<i64>, NotEnoughCollectorIds> {
        if alive >= wanted {
            return Ok(Vec::new());
        }
        self.check_capacity(existing.len().saturating_sub(alive), wanted)?;
        let mut taken: std::collections::HashSet<i64> = existing.iter().copied().collect();
        let mut random = pyrandom::PyRandom::new(i128::from(debtor_id));
        let mut new = Vec::with_capacity(wanted - alive);
        while alive + new.len() < wanted {
            let id = random.randint(self.min, self.max);
            if taken.insert(id) {
                new.push(id);
            }
        }
        Ok(new)
    }

    /// Checks that `dead + wanted` IDs use at most three quarters of the range.
    ///
    /// # Errors
    ///
    /// When they would use more.
    pub fn check_capacity(&self, dead: usize, wanted: usize) -> Result<(), NotEnoughCollectorIds> {
        let span = i128::from(self.max) - i128::from(self.min) + 1;
        let total = (dead as i128).saturating_add(wanted as i128);
        if total > span * 3 / 4 {
            return Err(NotEnoughCollectorIds);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: CollectorIds = CollectorIds {
        min: 0x0000_0100_0000_0000,
        max: 0x0000_0100_0000_07ff,
        per_debtor: 2,
    };

    #[test]
    fn plans_follow_the_debtors_sequence_and_skip_taken_ids() {
        assert_eq!(
            IDS.plan(666, &[], 0).unwrap(),
            [0x1000000074c, 0x10000000608]
        );
        // One alive already: only one more, the first of the sequence not taken.
        assert_eq!(IDS.plan(666, &[0x1000000074c], 1).unwrap(), [0x10000000608]);
        // A disabled collector with the first ID: the sequence goes on past it.
        assert_eq!(
            IDS.plan(666, &[0x1000000074c], 0).unwrap(),
            [0x10000000608, 0x100000006f3]
        );
        assert!(IDS.plan(666, &[1, 2], 2).unwrap().is_empty());
    }

    #[test]
    fn too_small_ranges_are_refused() {
        let tiny = CollectorIds {
            min: 1,
            max: 4,
            per_debtor: 3,
        };
        assert_eq!(tiny.plan(5, &[], 0).unwrap().len(), 3);
        assert_eq!(tiny.plan(5, &[1], 0), Err(NotEnoughCollectorIds));
    }
}
