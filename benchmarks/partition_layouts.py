"""Which sub-block layout a warm-started CIFAR DMNN should have: accuracy kept and TFLite latency.

    TFDS_DATA_DIR=../shared/tfds python -m benchmarks.partition_layouts [--images 100] [--rounds 3]

Needs the trained twin of `benchmarks.cifar10_pareto` (`runs/pareto/static_s0`,
`--only static_s0`) and, as references, its static nets of smaller width (the
rows `static_w018`, `static_w020`, `static_w021`, used when present). For each
per-stage `groups` layout, `from_static` builds the partition DMNN from the
trained twin (no training); then:
  * `all-on top-1`: every sub-block run, on 2,000 test images: what the
    partition split itself removes (each 3x3 keeps only its `groups` diagonal
    blocks; a stage with 1 group is the static block);
  * TFLite batch-1 latency (1 thread) relative to the twin's, with 1.0 / 0.75 /
    0.5 of each block's sub-blocks switched on by the controllers at run time
    (`benchmarks.tflite_latency.pattern_model`), and the MACs that pattern
    executes. All models are timed in the same interleaved rounds.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SECTION = "Partition layouts of the warm-started CIFAR DMNN (partition_layouts)"
LAYOUTS = ((2, 2, 2, 2), (1, 2, 2, 2), (1, 1, 2, 2), (1, 1, 1, 1))
RATES = (1.0, 0.75, 0.5)
STATIC_REFERENCES = ("static_w018", "static_w020", "static_w021")
ACCURACY_IMAGES = 2000


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100,
                        help="test images each model runs per latency round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds")
    args = parser.parse_args(argv)
    for name in ("images", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1. Received: {getattr(args, name)}")
    return args


def model_top1(model, images, labels):
    """Top-1 of `model` on `images` `[N, 32, 32, 3]` against `labels` `[N]`."""
    from benchmarks.make_presets import top1

    return top1(model.predict(images, batch_size=250, verbose=0), labels)


def main(argv=None):
    args = parse_args(argv)
    import keras

    import dmnn_keras as dk
    from benchmarks.cifar10_pareto import model_path, test_images
    from benchmarks.report import write_section
    from benchmarks.tflite_latency import pattern_model
    from dmnn_keras.data import load_dataset
    from dmnn_keras.export.latency import compare_latency

    if not os.path.exists(model_path("static_s0")):
        raise SystemExit("needs the trained twin: run python -m benchmarks.cifar10_pareto "
                         "--only static_s0 first")
    twin = keras.models.load_model(model_path("static_s0"))
    twin_macs = dk.profile(twin)["flops"]
    images = test_images(args.images)
    test = load_dataset("cifar10", "test", batch_size=ACCURACY_IMAGES, training=False,
                        max_examples=ACCURACY_IMAGES)
    eval_images, eval_labels = next(test.as_numpy_iterator())

    models, rows = [twin], [("static twin (width 0.25)", "-", 1.0, model_top1(twin, eval_images, eval_labels))]
    for name in STATIC_REFERENCES:
        if os.path.exists(model_path(name)):
            static = keras.models.load_model(model_path(name))
            models.append(static)
            rows.append((name, "-", dk.profile(static)["flops"] / twin_macs,
                         model_top1(static, eval_images, eval_labels)))
    for groups in LAYOUTS:
        dmnn = dk.from_static(twin, groups=groups)
        all_on = model_top1(dk.force_gates(dmnn, 1.0), eval_images, eval_labels)
        for rate in RATES:
            pattern = pattern_model(dmnn, rate)
            macs = dk.profile(pattern, images)["executed_flops_mean"] / twin_macs
            models.append(pattern)
            rows.append((f"groups={groups}", f"{rate:.2f}", macs, all_on if rate == 1.0 else None))
        print(f"built {groups}", flush=True)
    latency = compare_latency(models, images, threads=1, rounds=args.rounds)
    load = os.getloadavg()[0]

    lines = [
        f"The twin and the static nets of smaller width are the trained rows of `cifar10_pareto` "
        f"(seed 0); the DMNNs are `from_static(twin, groups=...)` before any fine-tuning. "
        f"`top-1` on {ACCURACY_IMAGES:,} test images (for a DMNN: every sub-block on). Latency: "
        f"TFLite batch 1, 1 thread, {args.images} test images x {args.rounds} interleaved rounds, "
        f"relative to the twin (median of per-image medians; mean); the controllers switch on the "
        f"given share of each block's sub-blocks at run time. Load average {load:.1f} at the end "
        f"(other jobs on the machine: the ratios, not the times, are the result). One seed.",
        "",
        "| model | sub-blocks on | MACs (x twin) | top-1 | latency median / mean (x twin) |",
        "|---|---|---|---|---|",
    ]
    base = latency[0]
    for (name, rate, macs, acc), lat in zip(rows, latency):
        lines.append(
            f"| {name} | {rate} | {macs:.2f} | {'' if acc is None else f'{100 * acc:.2f}%'} "
            f"| {lat['median_ms'] / base['median_ms']:.2f} / {lat['mean_ms'] / base['mean_ms']:.2f} |")
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
