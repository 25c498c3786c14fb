//! Solver benchmark on two shapes of random turns, with both matchers.
//!
//! - `uniform`: turns shaped like the reference's `test_random_matches` (`testgen::random_turn`),
//!   at 1e4, 1e5 and 1e6 offers (`SOLVER_BENCH_LARGE=1` adds 5e6);
//! - `issue`: turns of the shape of docs/turns.md#benchmarks (`testgen::shaped_turn`: about √N
//!   currencies in a peg tree of depth ≤ 3, Zipf-like popularity, lognormal amounts), at 1e5
//!   and 1e6 offers (`SOLVER_BENCH_LARGE=1` adds 5e6).
//!
//! `SOLVER_BENCH_SHAPES=issue` (or `uniform`) runs one shape, `SOLVER_BENCH_SIZES=100000,…`
//! chooses the sizes, `SOLVER_BENCH_MATCHERS=flow` (or `greedy`) one matcher,
//! `SOLVER_BENCH_SEED=7` another seed of the generators, and `SOLVER_BENCH_CSV=0` skips the CSV
//! round trip. For each turn and matcher it prints the solve time per stage, peak memory, the
//! traded volume, the LP upper bound and their ratio, and the rule violations of the result;
//! then the volume of the reference's own arithmetic on the same market, and the
//! CSV-in-to-CSV-out time of `solve_offline` (with the default matcher).

use std::time::Instant;
use swpt_trade::offline::{self, SolveOfflineArgs, memory};
use swpt_trade::solver::audit::violations;
use swpt_trade::solver::market::Market;
use swpt_trade::solver::pricing::{BaseCurrency, CurrencyRegistry};
use swpt_trade::solver::reference::reference_volume;
use swpt_trade::solver::testgen::{GenParams, ShapeParams, random_turn, shaped_turn};
use swpt_trade::solver::{MatcherKind, TurnInput, solve_with};

fn main() {
    let large = std::env::var_os("SOLVER_BENCH_LARGE").is_some_and(|v| v == "1");
    let sizes = std::env::var("SOLVER_BENCH_SIZES").ok().map(|list| {
        list.split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect::<Vec<usize>>()
    });
    let shapes = std::env::var("SOLVER_BENCH_SHAPES").unwrap_or_else(|_| "uniform,issue".into());
    let matchers: Vec<MatcherKind> = std::env::var("SOLVER_BENCH_MATCHERS")
        .unwrap_or_else(|_| "greedy,flow".into())
        .split(',')
        .filter_map(|m| MatcherKind::parse(m.trim()))
        .collect();
    let seed: u64 = std::env::var("SOLVER_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let csv = std::env::var_os("SOLVER_BENCH_CSV").is_none_or(|v| v != "0");
    for shape in shapes.split(',').map(str::trim) {
        let mut default = match shape {
            "uniform" => vec![10_000, 100_000, 1_000_000],
            "issue" => vec![100_000, 1_000_000],
            _ => continue,
        };
        if large {
            default.push(5_000_000);
        }
        for &n in sizes.as_ref().unwrap_or(&default) {
            let input = match shape {
                "uniform" => random_turn(&GenParams {
                    seed,
                    ..GenParams::bench(n)
                }),
                _ => shaped_turn(&ShapeParams::new(n, seed)),
            };
            bench_turn(shape, input, &matchers, csv);
        }
    }
}

fn bench_turn(shape: &str, input: TurnInput, matchers: &[MatcherKind], csv: bool) {
    let offers = input.sell_offers.len() + input.buy_offers.len();
    let market = market(&input);
    for &kind in matchers {
        memory::reset_peak();
        let clock = Instant::now();
        let out = solve_with(&input, kind.matcher().as_mut()).expect("generated turns are valid");
        let secs = clock.elapsed().as_secs_f64();
        let peak = memory::peak_bytes();
        let s = &out.stats;
        let v = violations(&input, &market, &out.rows);
        println!(
            "shape={shape} offers={offers} currencies={} matcher={} solve_s={secs:.3} \
             (price {:.0} ms, match {:.0} ms, aggregate {:.0} ms) peak_mib={:.0} cycles={} \
             volume={:.6e} lp_bound={:.6e} ratio={:.4} violations={} ({v:?})",
            s.currencies,
            kind.name(),
            s.price_ms,
            s.match_ms,
            s.aggregate_ms,
            peak as f64 / (1 << 20) as f64,
            s.cycles,
            s.traded_volume,
            s.lp_bound,
            s.traded_volume / s.lp_bound,
            v.total(),
        );
        let m = &s.matching;
        if kind == MatcherKind::Flow {
            println!(
                "  flow: took {} | arcs {} on no cycle {} ({:.1} %) | components {} largest {} arcs \
                 | scc {:.0} ms, flow {:.0} ms ({} phases, {} repair rounds, {} dust arcs) | \
                 flow volume {:.6e}, greedy volume {:.6e} ({:.0} ms)",
                m.matcher,
                m.arcs,
                m.arcs_on_no_cycle,
                100.0 * m.arcs_on_no_cycle as f64 / m.arcs.max(1) as f64,
                m.components,
                m.largest_component_arcs,
                m.scc_ms,
                m.flow_ms,
                m.phases,
                m.repair_rounds,
                m.dust_arcs,
                m.flow_volume,
                m.greedy_volume,
                m.greedy_ms,
            );
        }
    }
    compare_with_reference(&market);
    drop(market);
    if csv {
        csv_round_trip(input);
    }
}

fn market(input: &TurnInput) -> Market {
    let mut registry = CurrencyRegistry::new(BaseCurrency {
        locator: input.params.base_debtor_info_locator.clone(),
        debtor_id: input.params.base_debtor_id,
        max_distance_to_base: input.params.max_distance_to_base as u16,
    });
    for c in &input.currencies {
        registry.add_currency(c).expect("valid currency");
    }
    let prices = registry.prepare().expect("valid prices");
    Market::build(input, &prices).expect("valid offers")
}

/// Runs the reference's arithmetic (which breaks the minimum-trade rule) on the same market.
fn compare_with_reference(market: &Market) {
    let clock = Instant::now();
    let reference = reference_volume(market);
    println!(
        "  reference arithmetic: cycles={} volume={:.6e} ({:.0} ms)",
        reference.cycles,
        reference.volume,
        clock.elapsed().as_secs_f64() * 1000.0,
    );
}

/// Writes the turn as CSV files, then times `solve_offline` from CSV in to CSV out.
fn csv_round_trip(input: TurnInput) {
    let dir = std::env::temp_dir().join(format!("swpt-solver-bench-{}", std::process::id()));
    let (in_dir, out_dir) = (dir.join("in"), dir.join("out"));
    offline::write_input(&in_dir, &input).expect("writable temp dir");
    drop(input);
    memory::reset_peak();
    let args = SolveOfflineArgs {
        input: in_dir,
        output: out_dir,
    };
    let clock = Instant::now();
    offline::run(&args).expect("solve_offline succeeds");
    println!(
        "  solve_offline (CSV in to CSV out): {:.3} s, peak {:.0} MiB",
        clock.elapsed().as_secs_f64(),
        memory::peak_bytes() as f64 / (1 << 20) as f64
    );
    std::fs::remove_dir_all(&dir).ok();
}
