//! Transfer notes of a turn's transfers (see `docs/turns.md#transfer-notes`): the format
//! `-cXchge` and a three-line text naming the turn and the two parties.

use std::fmt;

/// The `transfer_note_format` of every turn transfer.
pub const AGENT_TRANSFER_NOTE_FORMAT: &str = "-cXchge";

/// Which stage of a turn a transfer belongs to; it decides the labels of the two IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// A seller pays its collector: `Buyer` (the collector) / `Seller` (the seller).
    Collecting,
    /// A collector pays another collector: `From` / `To`.
    Sending,
    /// A collector pays a buyer: `Seller` (the collector) / `Buyer` (the buyer).
    Dispatching,
}

impl NoteKind {
    /// Every kind.
    pub const ALL: [NoteKind; 3] = [Self::Collecting, Self::Sending, Self::Dispatching];

    /// The labels of the first and the second ID.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::Collecting => ("Buyer", "Seller"),
            Self::Sending => ("From", "To"),
            Self::Dispatching => ("Seller", "Buyer"),
        }
    }

    fn from_labels(first: &str, second: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.labels() == (first, second))
    }
}

/// The note of a turn transfer.
///
/// Written as `Trading session: <turn>\n<Label1>: <first>\n<Label2>: <second>\n`, the turn as
/// an unsigned 32-bit decimal number and the IDs as unsigned 64-bit lowercase hex numbers
/// without leading zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferNote {
    pub turn_id: i32,
    pub kind: NoteKind,
    pub first_id: i64,
    pub second_id: i64,
}

impl TransferNote {
    /// The note of a seller's payment to its collector in `turn_id`.
    pub fn collecting(turn_id: i32, collector_id: i64, seller_id: i64) -> Self {
        Self {
            turn_id,
            kind: NoteKind::Collecting,
            first_id: collector_id,
            second_id: seller_id,
        }
    }

    /// Parses a note as written by [`fmt::Display`], also accepting CRLF line ends, no final
    /// line end and upper-case hex digits; `None` when it is not a turn transfer's note.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("Trading session: ")?;
        let (turn, rest) = hex_digits(rest)?;
        let rest = line_end(rest)?;
        let (first_label, rest) = rest.split_once(": ")?;
        let (first, rest) = hex_digits(rest)?;
        let rest = line_end(rest)?;
        let (second_label, rest) = rest.split_once(": ")?;
        let (second, rest) = hex_digits(rest)?;
        if !(rest.is_empty() || line_end(rest) == Some("")) {
            return None;
        }
        // The turn is written in decimal, but any hex digit is matched first.
        let turn: u64 = turn.parse().ok()?;
        let turn = u32::try_from(turn).ok()?;
        Some(Self {
            turn_id: turn as i32,
            kind: NoteKind::from_labels(first_label, second_label)?,
            first_id: u64::from_str_radix(first, 16).ok()? as i64,
            second_id: u64::from_str_radix(second, 16).ok()? as i64,
        })
    }

    /// Whether the note fits an account's transfer of `acquired_amount` (not zero): the
    /// account must be the party that pays (negative) or is paid (positive).
    pub fn fits(&self, creditor_id: i64, acquired_amount: i64) -> bool {
        let (payer, payee) = match self.kind {
            NoteKind::Collecting => (self.second_id, self.first_id),
            NoteKind::Sending | NoteKind::Dispatching => (self.first_id, self.second_id),
        };
        if acquired_amount < 0 {
            creditor_id == payer
        } else {
            creditor_id == payee
        }
    }
}

/// 1 to 16 hex digits at the start of `s`, and the rest.
fn hex_digits(s: &str) -> Option<(&str, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_hexdigit).count();
    (1..=16).contains(&n).then(|| s.split_at(n))
}

/// `s` after a leading `\n` or `\r\n`.
fn line_end(s: &str) -> Option<&str> {
    s.strip_prefix('\n').or_else(|| s.strip_prefix("\r\n"))
}

impl fmt::Display for TransferNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first_label, second_label) = self.kind.labels();
        write!(
            f,
            "Trading session: {}\n{first_label}: {:x}\n{second_label}: {:x}\n",
            self.turn_id as u32, self.first_id as u64, self.second_id as u64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(turn_id: i32, kind: NoteKind, first_id: i64, second_id: i64) -> TransferNote {
        TransferNote {
            turn_id,
            kind,
            first_id,
            second_id,
        }
    }

    #[test]
    fn the_references_collecting_note() {
        assert_eq!(
            TransferNote::collecting(1, 999, 888).to_string(),
            "Trading session: 1\nBuyer: 3e7\nSeller: 378\n"
        );
        assert_eq!(
            note(-1, NoteKind::Sending, -1, i64::MIN).to_string(),
            "Trading session: 4294967295\nFrom: ffffffffffffffff\nTo: 8000000000000000\n"
        );
        assert_eq!(
            note(0, NoteKind::Dispatching, 0, 10).to_string(),
            "Trading session: 0\nSeller: 0\nBuyer: a\n"
        );
    }

    #[test]
    fn every_note_parses_back() {
        let turns = [0, 1, -1, i32::MAX, i32::MIN];
        let ids = [0, 1, -1, i64::MAX, i64::MIN];
        for turn in turns {
            for kind in NoteKind::ALL {
                for first in ids {
                    for second in ids {
                        let n = note(turn, kind, first, second);
                        assert_eq!(TransferNote::parse(&n.to_string()), Some(n));
                    }
                }
            }
        }
    }

    #[test]
    fn the_longest_note_is_short() {
        // Below APP_MIN_TRANSFER_NOTE_MAX_BYTES (80).
        for kind in NoteKind::ALL {
            assert!(note(-1, kind, -1, -1).to_string().len() < 80);
        }
    }

    #[test]
    fn parsing_follows_the_reference() {
        let parse = TransferNote::parse;
        assert_eq!(
            parse("Trading session: 1\nBuyer: b\nSeller: a\n"),
            Some(note(1, NoteKind::Collecting, 11, 10))
        );
        assert_eq!(
            parse("Trading session: 4294967295\r\nSeller: A\r\nBuyer: B\r\n"),
            Some(note(-1, NoteKind::Dispatching, 10, 11))
        );
        assert_eq!(
            parse("Trading session: 0\r\nFrom: Ffffffffffffffff\nTo: 0"),
            Some(note(0, NoteKind::Sending, -1, 0))
        );
        assert_eq!(
            parse("Trading session: 0001\nFrom: 0\nTo: 00000000000000ff\n"),
            Some(note(1, NoteKind::Sending, 0, 255))
        );
        for invalid in [
            "",
            "Trading session: 4294967295\nSeller: 0\nBuyer: 0Ffffffffffffffff",
            "Trading session: 4294967295\nSeller: 0\nBuyer: -0fffffffffffffff",
            "Trading session: -1\nSeller: 0\nBuyer: 0fffffffffffffff",
            "Trading session: 4294967296\nSeller: 0\nBuyer: 0",
            "Trading session: 1a\nSeller: 0\nBuyer: 0",
            "Trading session: 1\nINVALID1: 1\nINVALID2: 2\n",
            "Trading session: 1\nTo: 1\nFrom: 2\n",
            "Trading session: 1\nTo: 1\nTo: 2\n",
            "Trading session: 1\nTo: 1\nSeller: 2\n",
            "Trading session: 1\nTo: 1\nBuyer: 2\n",
            "Trading session: 1\nFrom: 1\nFrom: 2\n",
            "Trading session: 1\nFrom: 1\nBuyer: 2\n",
            "Trading session: 1\nFrom: 1\nSeller: 2\n",
            "Trading session: 1\nSeller: 1\nTo: 2\n",
            "Trading session: 1\nSeller: 1\nFrom: 2\n",
            "Trading session: 1\nSeller: 1\nSeller: 2\n",
            "Trading session: 1\nBuyer: 1\nTo: 2\n",
            "Trading session: 1\nBuyer: 1\nFrom: 2\n",
            "Trading session: 1\nBuyer: 1\nBuyer: 2\n",
            "Trading session: 1\nBuyer: 1\nSeller: 2\n\n",
            "Trading session: 1\nBuyer: 1\nSeller: 2\r",
            "Trading session: 1\rBuyer: 1\nSeller: 2\n",
            "Trading session: 1\nBuyer: \nSeller: 2\n",
            "Trading session: 1\nBuyer:  1\nSeller: 2\n",
            " Trading session: 1\nBuyer: 1\nSeller: 2\n",
        ] {
            assert_eq!(parse(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn notes_fit_the_paying_and_the_paid_account() {
        let collecting = note(1, NoteKind::Collecting, 999, 888);
        assert!(collecting.fits(888, -5) && collecting.fits(999, 5));
        assert!(!collecting.fits(999, -5) && !collecting.fits(888, 5));
        for kind in [NoteKind::Sending, NoteKind::Dispatching] {
            let n = note(1, kind, 999, 888);
            assert!(n.fits(999, -5) && n.fits(888, 5));
            assert!(!n.fits(888, -5) && !n.fits(999, 5));
        }
    }
}
