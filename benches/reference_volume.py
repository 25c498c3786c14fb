"""Traded volume that the reference's own cycle search finds on a `solve_offline` input.

A measurement aid for the solver benchmark, not part of the service. It loads the input CSV
files, prices the currencies and feeds the offers to the reference implementation's `Digraph`
(`swpt_trade/solver/matching.pyx` of epandurski/swpt_trade, compiled with Cython) exactly as
the reference's `Solver` does: currency minimum `f64(min_trade_amount) * price`, offer amount
`f32(f32(amount) * price)`, rows in file order. It prints the number of cycles and the volume
in base units (the sum of cycle amount times number of legs), leaving out two-node cycles
(a trader that sells and buys the same currency trades with itself; our solver nets those offers).

Usage: PYTHONPATH=<dir with the compiled matching module> python3 reference_volume.py <input dir>
"""

import csv
import struct
import sys
import time

from matching import Digraph


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def rows(path):
    with open(path, newline="") as f:
        yield from csv.DictReader(f)


def tradable_prices(directory, turn):
    base = (turn["base_debtor_info_locator"], int(turn["base_debtor_id"]))
    max_distance = int(turn["max_distance_to_base"])
    info = {}
    for r in rows(f"{directory}/currency_info.csv"):
        peg = None
        if r["peg_debtor_info_locator"] and r["peg_debtor_id"] and r["peg_exchange_rate"]:
            peg = (r["peg_debtor_info_locator"], int(r["peg_debtor_id"]), f32(float(r["peg_exchange_rate"])))
        info[r["debtor_info_locator"]] = (int(r["debtor_id"]), peg, r["is_confirmed"] in ("t", "true", "1"))

    def price(locator, depth=0):
        debtor_id, peg, _ = info[locator]
        if (locator, debtor_id) == base:
            return 1.0
        if depth >= max_distance or peg is None or peg[0] not in info or info[peg[0]][0] != peg[1]:
            return None
        p = price(peg[0], depth + 1)
        return None if p is None else f32(p * peg[2])

    prices = {}
    for locator, (debtor_id, _, confirmed) in info.items():
        p = price(locator) if confirmed else None
        if p is not None and p > 0.0:
            prices[debtor_id] = p
    return prices


def main(directory):
    turn = next(rows(f"{directory}/turn.csv"))
    min_trade = int(turn["min_trade_amount"])
    prices = tradable_prices(directory, turn)
    graph = Digraph()
    for debtor_id, p in prices.items():
        graph.add_currency(debtor_id, float(min_trade) * p)
    for r in rows(f"{directory}/sell_offer.csv"):
        p = prices.get(int(r["debtor_id"]))
        if p is not None:
            graph.add_supply(f32(f32(float(r["amount"])) * p), int(r["debtor_id"]), int(r["creditor_id"]))
    for r in rows(f"{directory}/buy_offer.csv"):
        p = prices.get(int(r["debtor_id"]))
        if p is not None:
            graph.add_demand(f32(f32(float(r["amount"])) * p), int(r["debtor_id"]), int(r["creditor_id"]))
    started = time.time()
    cycles, volume, self_trades = 0, 0.0, 0.0
    for amount, nodes in graph.cycles():
        if len(nodes) == 2:
            # A trader selling and buying one currency: no trade (our solver nets such offers).
            self_trades += amount
            continue
        cycles += 1
        volume += amount * (len(nodes) // 2)
    elapsed = time.time() - started
    print(f"reference: cycles={cycles} volume={volume:.6e} self_trades={self_trades:.3e} search_s={elapsed:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
