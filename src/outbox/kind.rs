//! The 16 kinds of outbox signals: their names, tables and the flushers' fixed order.

use crate::messages::OutgoingMessage;

macro_rules! signal_kinds {
    ($($name:ident => $table:ident),* $(,)?) => {
        /// One of the 16 signal types, each stored in its own outbox table (worker.md §5.1).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SignalKind {
            $(
                #[doc = concat!("`", stringify!($name), "` messages, in `", stringify!($table), "`.")]
                $name,
            )*
        }

        impl SignalKind {
            /// Every kind, in the reference's fixed flushing order (worker.md §4.6).
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
}

impl std::fmt::Display for SignalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.class_name())
    }
}

#[cfg(test)]
mod tests {
    use super::SignalKind;
    use crate::config::SIGNAL_BURST_COUNT_VARS;
    use crate::messages::OutgoingMessage;

    #[test]
    fn order_and_names_match_the_messages_and_the_burst_counts() {
        let types: Vec<_> = SignalKind::ALL.iter().map(|k| k.message_type()).collect();
        assert_eq!(types, OutgoingMessage::TYPES);
        let classes: Vec<_> = SignalKind::ALL.iter().map(|k| k.class_name()).collect();
        let burst: Vec<_> = SIGNAL_BURST_COUNT_VARS.iter().map(|(c, _)| *c).collect();
        assert_eq!(classes, burst);
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
