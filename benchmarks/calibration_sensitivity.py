"""How much a trained DMNN's test accuracy depends on where `calibrate_flops` puts the gate threshold.

    python -m benchmarks.calibration_sensitivity [--rows ROW,...]

For each finished `cifar10_pareto` row (its `runs/pareto/<row>/model.keras`; by
default the two dmnn_t050 rows trained before commit 6424dfe, whose calibration
re-estimated BatchNorm on un-augmented images):
  1. BatchNorm recalibrated on 20 batches of *augmented* training images (what
     training saw; the rows before commit c42ada0 calibrated this way), then
     the top-1 and the inference FLOPs ratio on the 10,000 test images;
  2. then the gate threshold shifted (`calibrate_flops`, no BatchNorm step) so
     that the ratio on 20 batches of *un-augmented* training images meets the
     row's flops_target, and the same two measurements.
The difference is what meeting the target costs the same trained weights.
Writes its own section of BENCHMARKS.md.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SECTION = "Threshold calibration sensitivity (calibration_sensitivity)"
DEFAULT_ROWS = ("dmnn_t050_s0_clean_bn", "dmnn_t050_s1_clean_bn")
BATCHES = 20


def measure(row):
    import keras

    import dmnn_keras as dk
    from dmnn_keras.data import load_dataset
    from dmnn_keras.training.evaluation import evaluate_model

    path = os.path.join("runs", "pareto", row, "model.keras")
    if not os.path.exists(path):
        raise SystemExit(f"--rows: {row} has no trained model at {path}; run cifar10_pareto first")
    model = keras.models.load_model(path, compile=False)

    def top1_and_ratio():  # the measurement the pareto rows report
        evaluation = evaluate_model(model, "cifar10", "test", batch_size=500)
        return evaluation["accuracy"], evaluation["profile"]["flops_ratio"]

    train = dict(batch_size=128, max_examples=50000)
    augmented = load_dataset("cifar10", "train", training=True, seed=0, **train)
    clean = load_dataset("cifar10", "train", training=False, **train)
    dk.recalibrate_batch_norm(model, augmented, batches=BATCHES)
    before = top1_and_ratio()
    shift = dk.calibrate_flops(model, clean, batches=BATCHES, recalibrate_bn=False)
    after = top1_and_ratio()
    return dict(target=model.resource_loss.flops_target, before=before, after=after,
                delta=shift["delta"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS))
    args = parser.parse_args(argv)
    from benchmarks.report import write_section

    lines = [
        "Each row's trained weights (`runs/pareto/<row>`), BatchNorm recalibrated on "
        f"{BATCHES} augmented training batches; then the gate threshold shifted so that "
        f"{BATCHES} un-augmented training batches meet the flops target. Top-1 and FLOPs "
        "ratio on the 10,000 test images. One seed per row.",
        "",
        "| row | flops target | BN on augmented: top-1 / test ratio | threshold to target on clean "
        "images: top-1 / test ratio | threshold shift |",
        "|---|---|---|---|---|",
    ]
    for row in [r for r in args.rows.split(",") if r]:
        m = measure(row)
        lines.append(f"| {row} | {m['target']:.3f} | {100 * m['before'][0]:.2f}% / "
                     f"{m['before'][1]:.3f} | {100 * m['after'][0]:.2f}% / {m['after'][1]:.3f} "
                     f"| {m['delta']:+.3f} |")
        print(lines[-1], flush=True)
    write_section(SECTION, "\n".join(lines),
                  command="TFDS_DATA_DIR=../shared/tfds python -m benchmarks.calibration_sensitivity")


if __name__ == "__main__":
    main()
