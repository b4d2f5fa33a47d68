"""One trained early-exit network at every MACs budget: top-1 and TFLite latency against its twin.

    python -m benchmarks.exit_budgets [--rows ROW[,ROW...]] [--shares 0.5,0.6,...]
                                      [--latency_images N]

An `EarlyExitModel`'s confidence threshold is set after training
(`dmnn_keras.calibrate_flops` on 20 clean training batches, as the recipe
does), so one trained model serves any budget. For each finished early-exit
row of `benchmarks/cifar10_pareto.py` and each share of its twin's MACs: the
calibrated threshold, the MACs ratio to the twin on the 10,000 test images,
top-1 against the twin of the same seed, and the TFLite batch-1 latency
(1 thread, learned exits, interleaved with the twin) relative to the twin.
The static networks of cifar10_pareto follow for comparison. Rewrites its
section of BENCHMARKS.md.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.cifar10_pareto import (  # noqa: E402
    LATENCY_IMAGES, ROWS, exits_flops_target, load_results, model_path,
)

SECTION = "Early exits at every budget (exit_budgets)"
EXIT_ROWS = tuple(row for row, spec in ROWS.items() if spec.get("early_exits"))
SHARES = (0.5, 0.55, 0.6, 0.65, 0.7, 0.8)
CALIBRATION_BATCHES = 20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(EXIT_ROWS),
                        help="comma-separated early-exit rows of cifar10_pareto")
    parser.add_argument("--shares", default=",".join(map(str, SHARES)),
                        help="comma-separated shares of the twin's MACs, each in (0, 1]")
    parser.add_argument("--latency_images", type=int, default=LATENCY_IMAGES,
                        help="test images for the TFLite latency (>= 1)")
    args = parser.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    bad = [r for r in args.rows if r not in EXIT_ROWS]
    if bad:
        parser.error(f"--rows: {bad} are not early-exit rows of cifar10_pareto; allowed: "
                     f"{list(EXIT_ROWS)}")
    try:
        args.shares = [float(s) for s in args.shares.split(",") if s]
    except ValueError:
        parser.error(f"--shares must be comma-separated numbers. Received: {args.shares!r}")
    if not args.shares or not all(0 < s <= 1 for s in args.shares):
        parser.error(f"--shares must be numbers in (0, 1]. Received: {args.shares}")
    if args.latency_images < 1:
        parser.error(f"--latency_images must be >= 1. Received: {args.latency_images}")
    missing = [r for r in args.rows if not os.path.exists(model_path(r))]
    if missing:
        parser.error(f"--rows: {missing} have no trained model yet (run python -m "
                     "benchmarks.cifar10_pareto --only ROW first)")
    return args


def measure(row, shares, clean, images, labels, latency_images):
    """One dict per share: threshold, MACs ratio to the twin, top-1 (and the twin's), latency ratios."""
    import keras

    import dmnn_keras as dk
    from dmnn_keras.export.latency import compare_latency
    from dmnn_keras.flops import executed_flops_per_image, model_flops_table
    from dmnn_keras.training.model_files import load_keras_model

    model = load_keras_model(model_path(row))
    twin = load_keras_model(model_path(ROWS[row]["twin"]))
    twin_flops = dk.profile(twin)["flops"]
    twin_top1 = float(np.mean(np.argmax(twin.predict(images, batch_size=250, verbose=0), -1)
                              == labels))
    heads = keras.Model(model.inputs[0], model.exit_logits_tensors())
    logits = heads.predict(images, batch_size=250, verbose=0)  # every exit, then the final one
    table = model_flops_table(model)
    results = []
    for share in shares:
        target = min(exits_flops_target(share, model.get_config()["exits"], ROWS[row]["twin"]), 1.0)
        calibration = dk.calibrate_flops(model, clean, target=target, batches=CALIBRATION_BATCHES)
        chosen, gates = model.exit_cascade(logits, training=False)
        gates = keras.ops.convert_to_numpy(gates)
        executed = executed_flops_per_image(
            table, {name: gates[:, k:k + 1] for k, name in enumerate(model.exit_names)})
        times = compare_latency([twin, model], images[:latency_images], rounds=3)
        results.append({
            "share": share, "threshold": calibration["confidence_threshold"],
            "macs_ratio": float(executed.mean() / twin_flops),
            "top1": float(np.mean(np.argmax(keras.ops.convert_to_numpy(chosen), -1) == labels)),
            "twin_top1": twin_top1,
            "exit_shares": [float(1 - gates[:, 0].mean())] + [
                float(gates[:, k - 1].mean() - gates[:, k].mean()) for k in range(1, gates.shape[1])],
            "latency_median": times[1]["median_ms"] / times[0]["median_ms"],
            "latency_mean": times[1]["mean_ms"] / times[0]["mean_ms"],
        })
        print(row, results[-1], flush=True)
    return results


def section(results, statics):
    """The markdown body: one line per (row, share), then the static networks."""
    lines = [
        "CIFAR-10 test images: 10,000. One trained model per row (cifar10_pareto), its confidence "
        f"threshold calibrated on {CALIBRATION_BATCHES} clean training batches for each share of "
        "the twin's MACs. `leave at` = share of the test images answered by each exit and by the "
        "final classifier; latency = TFLite batch-1, 1 thread, relative to the twin (median of "
        "per-image medians / mean), one measurement per cell.",
        "",
        "| row | aimed at | threshold | MACs (x twin) | top-1 | twin top-1 | difference | leave at "
        "| latency median / mean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row, cells in results.items():
        for r in cells:
            leave = " / ".join(f"{share:.2f}" for share in r["exit_shares"] + [
                1 - sum(r["exit_shares"])])
            lines.append(
                f"| {row} | {r['share']:.2f} | {r['threshold']:.3f} | {r['macs_ratio']:.3f} "
                f"| {100 * r['top1']:.2f}% | {100 * r['twin_top1']:.2f}% "
                f"| {100 * (r['top1'] - r['twin_top1']):+.2f} | {leave} "
                f"| {r['latency_median']:.2f} / {r['latency_mean']:.2f} |")
    if statics:
        lines += ["", "The static networks of cifar10_pareto (one seed each; latency measured there):",
                  "", "| static row | epochs | MACs (x twin) | top-1 | latency median |",
                  "|---|---|---|---|---|"]
        for row, r in statics.items():
            lines.append(f"| {row} | {r['epochs']} | {r['macs_ratio_to_twin']:.2f} "
                         f"| {100 * r['top1']:.2f}% | {r['latency_ratio_median']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from benchmarks.report import write_section
    from dmnn_keras.data import load_dataset

    test = load_dataset("cifar10", "test", batch_size=10000, training=False)
    images, labels = next(test.as_numpy_iterator())
    clean = load_dataset("cifar10", "train", batch_size=128, training=False)
    results = {row: measure(row, args.shares, clean, images, np.asarray(labels),
                            args.latency_images) for row in args.rows}
    statics = {row: r for row, r in load_results().items() if row.startswith("static_w")}
    write_section(SECTION, section(results, statics),
                  command="TFDS_DATA_DIR=../shared/tfds python -m benchmarks.exit_budgets "
                          f"--rows {','.join(args.rows)} --shares "
                          f"{','.join(map(str, args.shares))}")


if __name__ == "__main__":
    main()
