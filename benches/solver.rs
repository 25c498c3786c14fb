//! Solver benchmark: random turns shaped like the reference's `test_random_matches`.
//!
//! Run with `cargo bench --bench solver` (1e4, 1e5 and 1e6 offers); add
//! `SOLVER_BENCH_LARGE=1` for the 5e6-offer run, or choose sizes with
//! `SOLVER_BENCH_SIZES=1000000,5000000`; `SOLVER_BENCH_CSV=0` skips the CSV round trip. For each size it prints the solve time per
//! stage, offers per second, peak memory, cycles and traded volume, the volume the reference's
//! own arithmetic finds on the same market, and the CSV-in-to-CSV-out time of `solve_offline`.

use std::time::Instant;
use swpt_trade::offline::{self, SolveOfflineArgs, memory};
use swpt_trade::solver::market::Market;
use swpt_trade::solver::pricing::{BaseCurrency, CurrencyRegistry};
use swpt_trade::solver::reference::reference_volume;
use swpt_trade::solver::testgen::{GenParams, random_turn};
use swpt_trade::solver::{TurnInput, solve};

fn main() {
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    if std::env::var_os("SOLVER_BENCH_LARGE").is_some_and(|v| v == "1") {
        sizes.push(5_000_000);
    }
    if let Ok(list) = std::env::var("SOLVER_BENCH_SIZES") {
        sizes = list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
    }
    let csv = std::env::var_os("SOLVER_BENCH_CSV").is_none_or(|v| v != "0");
    for n in sizes {
        bench_size(n, csv);
    }
}

fn bench_size(n: usize, csv: bool) {
    let input = random_turn(&GenParams::bench(n));
    let offers = input.sell_offers.len() + input.buy_offers.len();
    memory::reset_peak();
    let clock = Instant::now();
    let out = solve(&input).expect("generated turns are valid");
    let secs = clock.elapsed().as_secs_f64();
    let peak = memory::peak_bytes();
    let s = &out.stats;
    println!(
        "offers={offers} currencies={} solve_s={secs:.3} (price {:.0} ms, match {:.0} ms, \
         aggregate {:.0} ms) offers_per_s={:.0} peak_mib={:.0} cycles={} volume={:.4e}",
        s.currencies,
        s.price_ms,
        s.match_ms,
        s.aggregate_ms,
        offers as f64 / secs,
        peak as f64 / (1 << 20) as f64,
        s.cycles,
        s.traded_volume,
    );
    let volume = s.traded_volume;
    drop(out);
    compare_with_reference(&input, volume);
    if csv {
        csv_round_trip(input);
    }
}

/// Runs the reference's arithmetic on the same market and prints both volumes.
fn compare_with_reference(input: &TurnInput, ours: f64) {
    let mut registry = CurrencyRegistry::new(BaseCurrency {
        locator: input.params.base_debtor_info_locator.clone(),
        debtor_id: input.params.base_debtor_id,
        max_distance_to_base: input.params.max_distance_to_base as u16,
    });
    for c in &input.currencies {
        registry.add_currency(c).expect("valid currency");
    }
    let prices = registry.prepare().expect("valid prices");
    let market = Market::build(input, &prices).expect("valid offers");
    let clock = Instant::now();
    let reference = reference_volume(&market);
    println!(
        "  reference arithmetic: cycles={} volume={:.4e} ({:.0} ms); ours/reference = {:.4}",
        reference.cycles,
        reference.volume,
        clock.elapsed().as_secs_f64() * 1000.0,
        ours / reference.volume,
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
