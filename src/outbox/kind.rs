//! The 16 kinds of outbox signals: their names, tables and the flushers' fixed order.

use crate::messages::OutgoingMessage;

macro_rules! signal_kinds {
    ($($name:ident => $table:ident),* $(,)?) => {
        /// One of the 16 signal types, each stored in its own outbox table
        /// (docs/messages.md#the-outbox).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SignalKind {
            $(
                #[doc = concat!("`", stringify!($name), "` messages, in `", stringify!($table), "`.")]
                $name,
            )*
        }

        impl SignalKind {
            /// Every kind, in the reference's fixed flushing order (docs/messages.md#flushing).
            pub const ALL: [SignalKind; 16] = [$(SignalKind::$name),*];

            /// The message type name (`ConfigureAccount`, …).
            pub fn message_type(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name),)*
                }
            }

            /// The reference's signal class name (`ConfigureAccountSignal`, …), which keys
            /// the burst counts and names the kinds in logs.
            pub fn class_name(self) -> &'static str {
                match self {
                    $(Self::$name => concat!(stringify!($name), "Signal"),)*
                }
            }

            /// The outbox table (`configure_account_signal`, …).
            pub fn table_name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($table),)*
                }
            }

            /// The kind of a message.
            pub fn of(message: &OutgoingMessage) -> Self {
                match message {
                    $(OutgoingMessage::$name(_) => Self::$name,)*
                }
            }
        }
    };
}

signal_kinds!(
    ConfigureAccount => configure_account_signal,
    PrepareTransfer => prepare_transfer_signal,
    FinalizeTransfer => finalize_transfer_signal,
    FetchDebtorInfo => fetch_debtor_info_signal,
    StoreDocument => store_document_signal,
    DiscoverDebtor => discover_debtor_signal,
    ConfirmDebtor => confirm_debtor_signal,
    ActivateCollector => activate_collector_signal,
    CandidateOffer => candidate_offer_signal,
    NeededCollector => needed_collector_signal,
    ReviseAccountLock => revise_account_lock_signal,
    TriggerTransfer => trigger_transfer_signal,
    AccountIdRequest => account_id_request_signal,
    AccountIdResponse => account_id_response_signal,
    StartSending => start_sending_signal,
    StartDispatching => start_dispatching_signal,
);

impl SignalKind {
    /// The kind with this class name (`PrepareTransferSignal`), if any.
    pub fn from_class_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.class_name() == name)
    }

    /// The setting of how many rows one flush batch of this kind takes (the reference's
    /// names, see `.env.example`); read into `Config::processes.flush_burst_counts`.
    pub fn burst_count_var(self) -> &'static str {
        match self {
            Self::ConfigureAccount => "APP_FLUSH_CONFIGURE_ACCOUNTS_BURST_COUNT",
            Self::PrepareTransfer => "APP_FLUSH_PREPARE_TRANSFERS_BURST_COUNT",
            Self::FinalizeTransfer => "APP_FLUSH_FINALIZE_TRANSFERS_BURST_COUNT",
            Self::FetchDebtorInfo => "APP_FLUSH_FETCH_DEBTOR_INFO_BURST_COUNT",
            Self::StoreDocument => "APP_FLUSH_STORE_DOCUMENT_BURST_COUNT",
            Self::DiscoverDebtor => "APP_FLUSH_DISCOVER_DEBTOR_BURST_COUNT",
            Self::ConfirmDebtor => "APP_FLUSH_CONFIRM_DEBTOR_BURST_COUNT",
            Self::ActivateCollector => "APP_FLUSH_ACTIVATE_COLLECTOR_BURST_COUNT",
            Self::CandidateOffer => "APP_FLUSH_CANDIDATE_OFFER_BURST_COUNT",
            Self::NeededCollector => "APP_FLUSH_NEEDED_COLLECTOR_BURST_COUNT",
            Self::ReviseAccountLock => "APP_FLUSH_REVISE_ACCOUNT_LOCK_BURST_COUNT",
            Self::TriggerTransfer => "APP_FLUSH_TRIGGER_TRANSFER_BURST_COUNT",
            Self::AccountIdRequest => "APP_ACCOUNT_ID_REQUEST_BURST_COUNT",
            Self::AccountIdResponse => "APP_ACCOUNT_ID_RESPONSE_BURST_COUNT",
            Self::StartSending => "APP_START_SENDING_BURST_COUNT",
            Self::StartDispatching => "APP_START_DISPATCHING_BURST_COUNT",
        }
    }
}

impl std::fmt::Display for SignalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.class_name())
    }
}

#[cfg(test)]
mod tests {
    use super::SignalKind;
    use crate::messages::OutgoingMessage;

    #[test]
    fn order_and_names_match_the_messages_and_the_burst_counts() {
        let types: Vec<_> = SignalKind::ALL.iter().map(|k| k.message_type()).collect();
        assert_eq!(types, OutgoingMessage::TYPES);
        for (i, kind) in SignalKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "ALL is in declaration order");
            let var = kind.burst_count_var();
            assert!(
                var.starts_with("APP_") && var.ends_with("_BURST_COUNT"),
                "{var}"
            );
        }
        let mut vars: Vec<_> = SignalKind::ALL.map(SignalKind::burst_count_var).to_vec();
        vars.sort_unstable();
        vars.dedup();
        assert_eq!(vars.len(), SignalKind::ALL.len());
        assert_eq!(
            SignalKind::from_class_name("StartSendingSignal"),
            Some(SignalKind::StartSending)
        );
        assert_eq!(SignalKind::from_class_name("StartSending"), None);
        assert_eq!(
            SignalKind::CandidateOffer.table_name(),
            "candidate_offer_signal"
        );
    }
}
