//! `solve_offline` on temporary directories.

use super::*;
use crate::solver::ResultRows;
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

/// The text of a result table's CSV file: the header, then one line of six integers per row.
fn csv<R>(header: &str, rows: &[R], values: impl Fn(&R) -> [i64; 6]) -> String {
    let mut text = format!("{header}\n");
    for row in rows {
        let line: Vec<String> = values(row).iter().map(i64::to_string).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    text
}

/// The six files `solve_offline` should write for `rows`, as (file, text) pairs.
fn expected_files(rows: &ResultRows) -> [(&'static str, String); 6] {
    [
        (
            "creditor_taking.csv",
            csv(
                "turn_id,creditor_id,debtor_id,creditor_hash,amount,collector_id",
                &rows.creditor_taking,
                |r| {
                    let h = i64::from(r.creditor_hash);
                    [
                        r.turn_id.into(),
                        r.creditor_id,
                        r.debtor_id,
                        h,
                        r.amount,
                        r.collector_id,
                    ]
                },
            ),
        ),
        (
            "collector_collecting.csv",
            csv(
                "turn_id,debtor_id,creditor_id,amount,collector_id,collector_hash",
                &rows.collector_collecting,
                |r| {
                    let h = i64::from(r.collector_hash);
                    [
                        r.turn_id.into(),
                        r.debtor_id,
                        r.creditor_id,
                        r.amount,
                        r.collector_id,
                        h,
                    ]
                },
            ),
        ),
        (
            "collector_sending.csv",
            csv(
                "turn_id,debtor_id,from_collector_id,to_collector_id,from_collector_hash,amount",
                &rows.collector_sending,
                |r| {
                    let h = i64::from(r.from_collector_hash);
                    let (from, to) = (r.from_collector_id, r.to_collector_id);
                    [r.turn_id.into(), r.debtor_id, from, to, h, r.amount]
                },
            ),
        ),
        (
            "collector_receiving.csv",
            csv(
                "turn_id,debtor_id,to_collector_id,from_collector_id,to_collector_hash,amount",
                &rows.collector_receiving,
                |r| {
                    let h = i64::from(r.to_collector_hash);
                    let (to, from) = (r.to_collector_id, r.from_collector_id);
                    [r.turn_id.into(), r.debtor_id, to, from, h, r.amount]
                },
            ),
        ),
        (
            "collector_dispatching.csv",
            csv(
                "turn_id,debtor_id,creditor_id,amount,collector_id,collector_hash",
                &rows.collector_dispatching,
                |r| {
                    let h = i64::from(r.collector_hash);
                    [
                        r.turn_id.into(),
                        r.debtor_id,
                        r.creditor_id,
                        r.amount,
                        r.collector_id,
                        h,
                    ]
                },
            ),
        ),
        (
            "creditor_giving.csv",
            csv(
                "turn_id,creditor_id,debtor_id,creditor_hash,amount,collector_id",
                &rows.creditor_giving,
                |r| {
                    let h = i64::from(r.creditor_hash);
                    [
                        r.turn_id.into(),
                        r.creditor_id,
                        r.debtor_id,
                        h,
                        r.amount,
                        r.collector_id,
                    ]
                },
            ),
        ),
    ]
}

/// The files of the output directory, by name.
fn output_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip_matches_the_library() {
    let dir = temp_dir("round-trip");
    let input = small_turn();
    write_input(&dir.join("in"), &input).unwrap();
    run(&args(&dir)).unwrap();
    let expected = solve(&input).unwrap().rows;
    let files = expected_files(&expected);
    let mut names: Vec<String> = files.iter().map(|(f, _)| f.to_string()).collect();
    names.sort();
    assert_eq!(output_files(&dir), names, "exactly the six tables");
    for (file, text) in files {
        assert!(text.lines().count() > 1, "{file}: the turn trades nothing");
        let written = fs::read_to_string(dir.join("out").join(file)).unwrap();
        if written != text {
            let line = written.lines().zip(text.lines()).position(|(a, b)| a != b);
            panic!(
                "{file} differs from solve()'s rows: {} lines instead of {}, first different line {line:?}",
                written.lines().count(),
                text.lines().count()
            );
        }
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

/// The six tables `solve_offline` writes for the hand-made turn. Currency 102 is worth 2 of
/// 101. One cycle: creditor 1 sells 5 000 of 101 (the 5 000 creditor 2 buys) and buys 2 500 of
/// 102 (worth 5 000) from creditor 2. The sellers' collector 999 collects, and sends to 998, the
/// currencies' active collector, which dispatches. Hashes: 1 → -1446, 2 → -6539,
/// 998 → -16868, 999 → 3057.
const HAND_MADE_OUTPUT: [(&str, &str); 6] = [
    (
        "collector_collecting.csv",
        "turn_id,debtor_id,creditor_id,amount,collector_id,collector_hash\n\
         7,101,1,5000,999,3057\n\
         7,102,2,2500,999,3057\n",
    ),
    (
        "collector_dispatching.csv",
        "turn_id,debtor_id,creditor_id,amount,collector_id,collector_hash\n\
         7,101,2,5000,998,-16868\n\
         7,102,1,2500,998,-16868\n",
    ),
    (
        "collector_receiving.csv",
        "turn_id,debtor_id,to_collector_id,from_collector_id,to_collector_hash,amount\n\
         7,101,998,999,-16868,5000\n\
         7,102,998,999,-16868,2500\n",
    ),
    (
        "collector_sending.csv",
        "turn_id,debtor_id,from_collector_id,to_collector_id,from_collector_hash,amount\n\
         7,101,999,998,3057,5000\n\
         7,102,999,998,3057,2500\n",
    ),
    (
        "creditor_giving.csv",
        "turn_id,creditor_id,debtor_id,creditor_hash,amount,collector_id\n\
         7,2,101,-6539,5000,998\n\
         7,1,102,-1446,2500,998\n",
    ),
    (
        "creditor_taking.csv",
        "turn_id,creditor_id,debtor_id,creditor_hash,amount,collector_id\n\
         7,1,101,-1446,5000,999\n\
         7,2,102,-6539,2500,999\n",
    ),
];

#[test]
fn database_exports_work_as_they_are() {
    let dir = hand_made("exports", |_| {});
    run(&args(&dir)).unwrap();
    let names: Vec<&str> = HAND_MADE_OUTPUT.iter().map(|(f, _)| *f).collect();
    assert_eq!(output_files(&dir), names);
    for (file, expected) in HAND_MADE_OUTPUT {
        let written = fs::read_to_string(dir.join("out").join(file)).unwrap();
        assert_eq!(written, expected, "{file}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_names_file_and_line() {
    type Edit = Box<dyn FnOnce(&Path)>;
    let cases: [(&str, Edit, &str); 6] = [
        (
            "dup-sell",
            Box::new(|d| append(d, "sell_offer.csv", "7,1,101,100,999\n")),
            "sell_offer.csv line 4: duplicated sell offer: creditor 1, debtor 101",
        ),
        (
            "unknown",
            Box::new(|d| append(d, "buy_offer.csv", "7,3,666,100\n")),
            "buy_offer.csv line 4: unknown currency 666",
        ),
        (
            "malformed",
            Box::new(|d| append(d, "buy_offer.csv", "7,3\n")),
            "buy_offer.csv line 4: CSV error: record 3 (line: 4, byte: 63): found record with 2 fields, but the previous record has 4 fields",
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
    let mut messages = Vec::new();
    let mut expected_messages = Vec::new();
    for (name, edit, expected) in cases {
        let dir = hand_made(name, edit);
        let message = error_of(&dir);
        let input = format!("{}/", dir.join("in").display());
        let message = message.strip_prefix(&input).unwrap_or(&message).to_owned();
        messages.push((name, message));
        expected_messages.push((name, expected.to_owned()));
        fs::remove_dir_all(&dir).unwrap();
    }
    assert_eq!(messages, expected_messages);
}
