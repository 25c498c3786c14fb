//! `solve_offline` with each matcher: the summary's LP bound and the matcher's figures.

use super::*;
use crate::solver::testgen::{ShapeParams, shaped_turn};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "swpt-offline-matcher-{}-{name}",
        std::process::id()
    ))
}

#[test]
fn the_summary_has_the_bound_and_the_matcher() {
    let dir = temp("summary");
    let input = shaped_turn(&ShapeParams::new(3_000, 5));
    write_input(&dir.join("in"), &input).unwrap();
    let loaded = read::load(&dir.join("in")).unwrap();
    for kind in [MatcherKind::Flow, MatcherKind::Greedy] {
        let out = solve_with(&loaded, kind.matcher().as_mut()).unwrap();
        let json = summary(&loaded, &out, &[], 0.0, 0.0);
        let volume = json["traded_volume"].as_f64().unwrap();
        let bound = json["lp_bound"].as_f64().unwrap();
        let ratio = json["volume_to_bound"].as_f64().unwrap();
        assert!(volume > 0.0 && bound > 0.0, "{json}");
        assert!((ratio - volume / bound).abs() < 1e-12);
        match kind {
            MatcherKind::Flow => {
                assert!(ratio > 0.9 && ratio < 1.001, "{json}");
                assert!(["flow", "greedy"].contains(&json["matcher"]["took"].as_str().unwrap()));
                assert!(json["matcher"]["components"].as_u64().unwrap() >= 1);
                assert!(json["matcher"]["greedy_volume"].as_f64().unwrap() <= volume);
            }
            MatcherKind::Greedy => assert_eq!(json["matcher"]["took"], "greedy"),
        }
    }
    let args = SolveOfflineArgs {
        input: dir.join("in"),
        output: dir.join("out"),
    };
    run_with(&args, MatcherKind::Flow).unwrap();
    assert!(dir.join("out").join("creditor_taking.csv").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_matcher_setting_is_checked() {
    assert!(parse_matcher("flow").is_ok());
    assert!(parse_matcher("greedy").is_ok());
    assert_eq!(
        parse_matcher("simplex").unwrap_err(),
        "expected flow or greedy"
    );
}
