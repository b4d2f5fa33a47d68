"""exit_budgets: the table and its arguments."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.exit_budgets import EXIT_ROWS, parse_args, section  # noqa: E402


def test_the_table_has_one_line_per_row_and_share_and_lists_the_statics():
    cell = {"share": 0.6, "threshold": 0.655, "macs_ratio": 0.6012, "top1": 0.8004,
            "twin_top1": 0.7972, "exit_shares": [0.72, 0.1], "latency_median": 0.61,
            "latency_mean": 0.63}
    statics = {"static_w020": {"epochs": 15, "macs_ratio_to_twin": 0.62, "top1": 0.7785,
                               "latency_ratio_median": 0.77}}
    body = section({"exits_t060_s0": [cell]}, statics)
    assert ("| exits_t060_s0 | 0.60 | 0.655 | 0.601 | 80.04% | 79.72% | +0.32 "
            "| 0.72 / 0.10 / 0.18 | 0.61 / 0.63 |") in body
    assert body.rstrip().endswith("| static_w020 | 15 | 0.62 | 77.85% | 0.77 |")


def test_bad_arguments_are_refused(capsys):
    assert {"exits_t060_s0", "exits_t060_s1", "exits_e25_t060_s0"} <= set(EXIT_ROWS)
    with pytest.raises(SystemExit):
        parse_args(["--rows", "static_s0"])
    assert "--rows: ['static_s0'] are not early-exit rows" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--rows", EXIT_ROWS[0], "--shares", "0.5,1.5"])
    assert "--shares must be numbers in (0, 1]" in capsys.readouterr().err
