"""A trained DMNN exported with its constant gates fixed: top-1, MACs and TFLite latency, before and after.

    python -m benchmarks.fixed_gates [--rows ROW,...] [--rewrite]

For each finished `cifar10_pareto` DMNN row (its `runs/pareto/<row>/model.keras`,
restored from the shipped preset made from it if missing, as `static_s0`;
by default every DMNN row trained there): `dmnn_keras.fix_constant_gates` on
the 2,560 un-augmented training images that `calibrate_flops` meets the target
on (20 batches of 128), so gates that none of them switches become constants
(no `IF` op, no controller work for them). Then, on the 10,000 test images,
the top-1 and MACs (ratio to the row's twin) before and after, and the TFLite
batch-1 latency (1 thread, learned gates, 200 test images, 10 rounds) of the
row before and after fixing, of `static_s0`, and of the row again (a second
interpreter of the same model: how far two measurements of one model fall
apart), interleaved image by image in one measurement (`compare_latency`), as
ratios to `static_s0`. One seed per row;
each row is written to `benchmarks/results/fixed_gates.json` and to its own
section of BENCHMARKS.md as soon as it is measured.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SECTION = "Constant gates fixed at export (fixed_gates)"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fixed_gates.json")
CALIBRATION_BATCHES = 20
BATCH_SIZE = 128
ROUNDS = 10


def trained_dmnn_rows():
    """The cifar10_pareto DMNN rows with a trained model in runs/pareto, in the benchmark's order."""
    from benchmarks.cifar10_pareto import ROWS, model_path

    return [row for row in ROWS if row.startswith("dmnn") and os.path.exists(model_path(row))]


def calibration_images():
    """The images the gates are fixed on: the first 2,560 un-augmented CIFAR-10 training images.

    The ones `calibrate_flops` meets the target on, as a dataset of
    `([128, 32, 32, 3], [128])` batches.
    """
    from dmnn_keras.data import load_dataset

    return load_dataset("cifar10", "train", batch_size=BATCH_SIZE, training=False,
                        max_examples=CALIBRATION_BATCHES * BATCH_SIZE)


def top1_and_macs(model, twin_flops):
    from dmnn_keras.training.evaluation import evaluate_model

    evaluation = evaluate_model(model, "cifar10", "test", batch_size=500)
    return evaluation["accuracy"], evaluation["profile"]["executed_flops_mean"] / twin_flops


def measure(row):
    """The row's entry: top-1, MACs ratio and latency ratio to static_s0, before and after."""
    import keras

    import dmnn_keras as dk
    from benchmarks.cifar10_pareto import (LATENCY_IMAGES, model_path, reference,
                                           reference_flops, test_images)
    from benchmarks.report import measured_where
    from dmnn_keras.export.latency import compare_latency

    twin_flops = reference_flops(row)
    learned = keras.models.load_model(model_path(row), compile=False)
    fixed = keras.models.load_model(model_path(row), compile=False)
    gates = dk.fix_constant_gates(fixed, calibration_images())
    values = [value for block in gates.values() for value in block]
    before, after = top1_and_macs(learned, twin_flops), top1_and_macs(fixed, twin_flops)
    static = keras.models.load_model(model_path("static_s0"), compile=False)
    # The row once more, a second interpreter of the same model: the measurement's own spread.
    times = compare_latency([static, learned, fixed, learned], test_images(LATENCY_IMAGES),
                            threads=1, rounds=ROUNDS)
    return {
        "row": row,
        "reference": reference(row),
        **measured_where(),
        "fixed_gates": sum(value is not None for value in values),
        "gates": len(values),
        "top1_before": before[0],
        "top1_after": after[0],
        "macs_ratio_to_twin_before": before[1],
        "macs_ratio_to_twin_after": after[1],
        **{f"latency_ratio_{stat}_to_static_s0_{name}": times[i][f"{stat}_ms"] / times[0][f"{stat}_ms"]
           for i, name in ((1, "before"), (2, "after"), (3, "again"))
           for stat in ("median", "mean")},
    }


def _again(result):
    """The row's second measurement (median / mean), or '-' for rows measured before it was taken."""
    if "latency_ratio_median_to_static_s0_again" not in result:
        return "-"
    return (f"{result['latency_ratio_median_to_static_s0_again']:.2f} / "
            f"{result['latency_ratio_mean_to_static_s0_again']:.2f}")


def seed_families(results):
    """`{row name without _s<seed>: [its results]}` of the families measured with 2 or more seeds."""
    families = {}
    for r in results.values():
        families.setdefault(r["row"].rsplit("_s", 1)[0], []).append(r)
    return {family: rows for family, rows in families.items() if len(rows) > 1}


def section(results):
    from benchmarks.report import measured_on

    lines = [
        f"`fix_constant_gates` on {CALIBRATION_BATCHES * BATCH_SIZE} un-augmented training images "
        "(the `calibrate_flops` images); top-1 and MACs on the 10,000 test images; TFLite batch-1 "
        f"latency (1 thread, {ROUNDS} rounds over 200 test images) of static_s0, the row, the "
        "row with fixed gates and the row again (a second interpreter of the same model: the "
        "measurement's own spread), interleaved image by image in one measurement, as ratios to "
        "static_s0 (median / mean of the per-image times). MACs are ratios to the row's twin. "
        "One seed per row.",
        "",
        "| row | gates fixed | top-1 before / after | MACs x twin before / after | latency x "
        "static_s0 before | latency x static_s0 after | the row again |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        lines.append(
            f"| {r['row']} | {r['fixed_gates']} of {r['gates']} | {100 * r['top1_before']:.2f}% / "
            f"{100 * r['top1_after']:.2f}% | {r['macs_ratio_to_twin_before']:.3f} / "
            f"{r['macs_ratio_to_twin_after']:.3f} | "
            f"{r['latency_ratio_median_to_static_s0_before']:.2f} / "
            f"{r['latency_ratio_mean_to_static_s0_before']:.2f} | "
            f"{r['latency_ratio_median_to_static_s0_after']:.2f} / "
            f"{r['latency_ratio_mean_to_static_s0_after']:.2f} | "
            f"{_again(r)} |")
    lines.append("")
    lines.append(measured_on(results))
    for family, rows in seed_families(results).items():
        mean = {key: sum(r[key] for r in rows) / len(rows) for key in rows[0] if key.startswith(
            ("top1", "latency")) and all(key in r for r in rows)}
        lines.append(
            f"- {family} ({len(rows)} seeds): top-1 {100 * mean['top1_before']:.2f}% / "
            f"{100 * mean['top1_after']:.2f}%, latency median x static_s0 "
            f"{mean['latency_ratio_median_to_static_s0_before']:.2f} before, "
            f"{mean['latency_ratio_median_to_static_s0_after']:.2f} after fixing (issue 12 asks "
            "for <= 0.8x the twin's)" + (
                f"; the same model measured twice: {mean['latency_ratio_median_to_static_s0_before']:.2f}"
                f" and {mean['latency_ratio_median_to_static_s0_again']:.2f}"
                if "latency_ratio_median_to_static_s0_again" in mean else ""))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=None,
                        help="comma-separated cifar10_pareto DMNN rows (default: every trained one)")
    parser.add_argument("--rewrite", action="store_true",
                        help="only rewrite the section of BENCHMARKS.md from the results file")
    args = parser.parse_args(argv)
    from benchmarks.cifar10_pareto import model_path, restore_from_preset
    from benchmarks.report import save_json, write_section

    def write(results, measured=True):
        write_section(SECTION, section(results), command="TFDS_DATA_DIR=../shared/tfds python -m "
                      "benchmarks.fixed_gates [--rows ROW,...]", measured=measured)

    if args.rewrite:
        with open(RESULTS) as f:
            write(json.load(f), measured=False)
        return

    rows = trained_dmnn_rows() if args.rows is None else [r for r in args.rows.split(",") if r]
    others = [row for row in rows if not row.startswith("dmnn")]
    if others:
        raise SystemExit(f"--rows: {others} are not DMNN rows; allowed: cifar10_pareto rows "
                         "named dmnn_*")
    missing = [row for row in rows + ["static_s0"] if not os.path.exists(model_path(row))
               and not restore_from_preset(row)]  # a shipped preset's row needs no training
    if missing:
        raise SystemExit(f"--rows: no trained model for {missing} in runs/pareto; "
                         "run python -m benchmarks.cifar10_pareto --only ROW first")
    results = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            results = json.load(f)
    for row in rows:
        results[row] = measure(row)
        save_json(RESULTS, results)
        write(results)
        print(section({row: results[row]}).splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
