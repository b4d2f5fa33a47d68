"""Where a trained DMNN (or early-exit network) loses to its twin: top-1 and MACs by quarter of its uncertainty.

    python -m benchmarks.accuracy_by_uncertainty [--rows ROW[,ROW...]] [--images N]

For each finished row of `benchmarks/cifar10_pareto.py` (its model in
`runs/pareto/<row>`) and its static twin: the CIFAR-10 test images are split
into four quarters by the DMNN's uncertainty (`prediction_uncertainty`: the
entropy of its softmax over log(classes), the signal of `uncertainty_spread`),
and per quarter the table gives the DMNN's and the twin's top-1 and the
DMNN's mean FLOPs ratio (executed over its own full MACs). A DMNN that
spends its MACs well runs more of them where it is unsure, and loses little
to its twin there. The early-exit rows (`exits_*`) are measured the same
way, by the uncertainty of the exit that answered. Rewrites its section of
BENCHMARKS.md.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.cifar10_pareto import ROWS, model_path  # noqa: E402

SECTION = "Accuracy by uncertainty quarter (accuracy_by_uncertainty)"
DEFAULT_ROWS = ("dmnn_lr10_t060_s0", "dmnn_lr10_t060_s1", "dmnn_unc6_t060_s0", "dmnn_unc6_t060_s1",
                "dmnn_unc6w10_t060_s0", "dmnn_unc6w30_t060_s0", "dmnn_d2_block_t060_s0",
                "dmnn_d2_unc6_t060_s0", "exits_t060_s0", "exits_t060_s1")
QUARTERS = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                        help="comma-separated fine-tuned rows of cifar10_pareto")
    parser.add_argument("--images", type=int, default=10000, help="CIFAR-10 test images (> 0)")
    args = parser.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    bad = [r for r in args.rows if not ROWS.get(r, {}).get("twin")]
    if bad:
        parser.error(f"--rows: {bad} are not fine-tuned rows of cifar10_pareto; allowed: "
                     f"{[r for r in ROWS if ROWS[r].get('twin')]}")
    missing = [r for r in args.rows if not os.path.exists(model_path(r))]
    if missing:
        parser.error(f"--rows: {missing} have no trained model yet (run python -m "
                     "benchmarks.cifar10_pareto --only ROW first)")
    if args.images <= 0:
        parser.error(f"--images must be > 0. Received: {args.images}")
    return args


def by_quarter(uncertainty, values):
    """Mean of `values` `[N]` over each quarter of the images sorted by `uncertainty` `[N]`."""
    order = np.argsort(uncertainty, kind="stable")
    return [float(np.mean(values[part])) for part in np.array_split(order, QUARTERS)]


def measure(row, images, labels):
    """`{"dmnn", "twin", "ratio"}`: per-quarter DMNN and twin top-1 and the DMNN's FLOPs ratio."""
    import dmnn_keras as dk
    from dmnn_keras.layers.resource_loss import prediction_uncertainty
    from dmnn_keras.training.model_files import load_keras_model

    model = load_keras_model(model_path(row))
    twin = load_keras_model(model_path(ROWS[row]["twin"]))
    gates, logits = dk.predict_gates(model, images, return_logits=True)
    profile = dk.profile(model, predictions=(gates, logits))
    ratio = np.asarray(profile["executed_flops"]) / profile["flops"]
    twin_logits = twin.predict(images, batch_size=256, verbose=0)
    uncertainty = np.asarray(prediction_uncertainty(logits))
    return {
        "dmnn": by_quarter(uncertainty, (np.argmax(logits, -1) == labels).astype(float)),
        "twin": by_quarter(uncertainty, (np.argmax(twin_logits, -1) == labels).astype(float)),
        "ratio": by_quarter(uncertainty, ratio),
    }


def section(results, images):
    """The markdown body: one line per row, one cell per quarter (most confident first)."""
    lines = [
        f"CIFAR-10 test images: {images}, in four quarters by the DMNN's uncertainty (most "
        "confident first). Each cell: DMNN top-1 / twin top-1 (difference) and the DMNN's FLOPs "
        "ratio on that quarter.",
        "",
        "| row | twin | " + " | ".join(f"quarter {q + 1}" for q in range(QUARTERS)) + " |",
        "|---|---|" + "---|" * QUARTERS,
    ]
    for row, r in results.items():
        cells = [f"{100 * d:.1f} / {100 * t:.1f} ({100 * (d - t):+.1f}), {f:.3f}"
                 for d, t, f in zip(r["dmnn"], r["twin"], r["ratio"])]
        lines.append(f"| {row} | {ROWS[row]['twin']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    from benchmarks.report import write_section
    from dmnn_keras.data import load_dataset

    data = load_dataset("cifar10", "test", batch_size=args.images, training=False,
                        max_examples=args.images)
    images, labels = next(data.as_numpy_iterator())
    results = {}
    for row in args.rows:
        results[row] = measure(row, images, np.asarray(labels))
        print(row, results[row], flush=True)
    write_section(SECTION, section(results, len(labels)),
                  command="TFDS_DATA_DIR=../shared/tfds python -m "
                          f"benchmarks.accuracy_by_uncertainty --rows {','.join(args.rows)}")


if __name__ == "__main__":
    main()
