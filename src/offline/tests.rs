//! `solve_offline` on temporary directories.

use super::*;
use crate::solver::testgen::{GenParams, random_turn};
use std::fs;

/// A fresh, empty temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swpt-offline-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn args(dir: &Path) -> SolveOfflineArgs {
    SolveOfflineArgs {
        input: dir.join("in"),
        output: dir.join("out"),
    }
}

fn small_turn() -> TurnInput {
    random_turn(&GenParams {
        offers: 3000,
        ..GenParams::bench(3000)
    })
}

fn error_of(dir: &Path) -> String {
    run(&args(dir)).unwrap_err().to_string()
}

#[test]
fn round_trip_matches_the_library() {
    let dir = temp_dir("round-trip");
    let input = small_turn();
    write_input(&dir.join("in"), &input).unwrap();
    run(&args(&dir)).unwrap();
    let expected = solve(&input).unwrap().rows;
    let text = fs::read_to_string(dir.join("out/creditor_taking.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("turn_id,creditor_id,debtor_id,creditor_hash,amount,collector_id")
    );
    let first = expected.creditor_taking[0];
    let row = format!(
        "{},{},{},{},{},{}",
        first.turn_id,
        first.creditor_id,
        first.debtor_id,
        first.creditor_hash,
        first.amount,
        first.collector_id
    );
    assert_eq!(lines.next(), Some(row.as_str()));
    assert_eq!(lines.count() + 1, expected.creditor_taking.len());
    for (table, n) in [
        ("collector_sending", expected.collector_sending.len()),
        ("creditor_giving", expected.creditor_giving.len()),
    ] {
        let text = fs::read_to_string(dir.join(format!("out/{table}.csv"))).unwrap();
        assert_eq!(text.lines().count(), n + 1, "{table}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// Writes a small hand-made input; `edit` may change any file before the run.
fn hand_made(name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = temp_dir(name);
    let input = dir.join("in");
    fs::create_dir_all(&input).unwrap();
    let files = [
        (
            "turn.csv",
            "turn_id,base_debtor_info_locator,base_debtor_id,max_distance_to_base,min_trade_amount,phase\n7,https://example.com/101,101,10,1000,2\n",
        ),
        (
            "currency_info.csv",
            "is_confirmed,debtor_id,debtor_info_locator,peg_debtor_info_locator,peg_debtor_id,peg_exchange_rate,turn_id\nt,101,https://example.com/101,,,,7\nt,102,https://example.com/102,https://example.com/101,101,2,7\n",
        ),
        (
            "collector_account.csv",
            "debtor_id,collector_id,collector_hash,account_id,status,latest_status_change_at\n101,998,0,a,2,2024-01-01\n102,998,0,b,2,2024-01-01\n103,555,0,,1,2024-01-01\n",
        ),
        (
            "sell_offer.csv",
            "turn_id,creditor_id,debtor_id,amount,collector_id\n7,1,101,8000,999\n7,2,102,3000,999\n",
        ),
        (
            "buy_offer.csv",
            "turn_id,creditor_id,debtor_id,amount\n7,1,102,6000\n7,2,101,5000\n",
        ),
    ];
    for (file, text) in files {
        fs::write(input.join(file), text).unwrap();
    }
    edit(&input);
    dir
}

fn append(dir: &Path, file: &str, line: &str) {
    let mut text = fs::read_to_string(dir.join(file)).unwrap();
    text.push_str(line);
    fs::write(dir.join(file), text).unwrap();
}

#[test]
fn database_exports_work_as_they_are() {
    let dir = hand_made("exports", |_| {});
    run(&args(&dir)).unwrap();
    let giving = fs::read_to_string(dir.join("out/creditor_giving.csv")).unwrap();
    assert!(giving.contains("7,2,101,"), "{giving}");
    let sending = fs::read_to_string(dir.join("out/collector_sending.csv")).unwrap();
    assert_eq!(sending.lines().count(), 3, "{sending}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_names_file_and_line() {
    type Edit = Box<dyn FnOnce(&Path)>;
    let cases: [(&str, Edit, &str); 6] = [
        (
            "dup-sell",
            Box::new(|d| append(d, "sell_offer.csv", "7,1,101,100,999\n")),
            "sell_offer.csv line 4: duplicated sell offer",
        ),
        (
            "unknown",
            Box::new(|d| append(d, "buy_offer.csv", "7,3,666,100\n")),
            "buy_offer.csv line 4: unknown currency 666",
        ),
        (
            "malformed",
            Box::new(|d| append(d, "buy_offer.csv", "7,3\n")),
            "buy_offer.csv line 4: CSV error",
        ),
        (
            "not-a-number",
            Box::new(|d| append(d, "sell_offer.csv", "7,x,101,100,999\n")),
            "sell_offer.csv line 4: column `creditor_id`: invalid value `x`",
        ),
        (
            "missing-column",
            Box::new(|d| {
                fs::write(d.join("buy_offer.csv"), "creditor_id,debtor_id\n1,101\n").unwrap()
            }),
            "buy_offer.csv line 1: missing column `amount`",
        ),
        (
            "dup-currency",
            Box::new(|d| {
                append(
                    d,
                    "currency_info.csv",
                    "t,102,https://example.com/102b,https://example.com/101,101,2,7\n",
                )
            }),
            "currency_info.csv line 4: duplicated tradable debtor_id: 102",
        ),
    ];
    for (name, edit, expected) in cases {
        let dir = hand_made(name, edit);
        let message = error_of(&dir);
        assert!(message.contains(expected), "{name}: {message}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
