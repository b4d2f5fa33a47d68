"""Reading a trained model's gates: the gate probe run eagerly against compiled, side by side.

    python -m benchmarks.gate_reading [--presets dmnn_resnet_cifar10,exits_resnet_cifar10]
        [--strategies default,mirrored] [--images 100,800,10000] [--batch_size 100] [--repeats 2]

`predict_gates` (and so `evaluate_model`) runs a model's gate probe over the
images; it runs the probe compiled (`predict_on_batch`) when the pass has more
than `EAGER_PASS_BATCHES` batches, eagerly otherwise (`dmnn_keras.gates`).
Each measurement runs in a fresh process: load a shipped preset (trained on
CIFAR-10; under "mirrored", inside a `MirroredStrategy` over 2 logical CPU
devices, as the recipe's `--strategy=mirrored` builds it), then time one
`probe_outputs` pass over the first N CIFAR-10 test images (each N of
`--images`) with `compiled` False or True; the trace is part of the compiled
time, as it is for a user: the short passes say where compiling starts to
pay. The two modes alternate, the first rotating per repeat. Each
result keeps a digest of the gates and the top-1, so the table also says
whether both modes read the same gates. Results are kept in
`benchmarks/results/gate_reading.json` as each one finishes (a rerun measures
only what is missing; `--fresh` starts again) and the section of
BENCHMARKS.md is rewritten after each.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SECTION = "Reading the gates: eager against compiled (gate_reading)"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gate_reading.json")
PRESETS = ("dmnn_resnet_cifar10", "exits_resnet_cifar10")
STRATEGIES = ("default", "mirrored")
MODES = ("eager", "compiled")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default=",".join(PRESETS),
                        help=f"comma-separated, of {', '.join(PRESETS)}")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help=f"comma-separated, of {', '.join(STRATEGIES)}")
    parser.add_argument("--images", default="100,800,10000",
                        help="comma-separated counts of CIFAR-10 test images, one pass each")
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2, help="measurements per row and mode")
    parser.add_argument("--fresh", action="store_true", help="drop the stored results first")
    parser.add_argument("--child", nargs=3, metavar=("PRESET", "STRATEGY", "MODE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, allowed in (("presets", PRESETS), ("strategies", STRATEGIES)):
        chosen = [value for value in getattr(args, name).split(",") if value]
        unknown = [value for value in chosen if value not in allowed]
        if unknown or not chosen:
            parser.error(f"--{name}: unknown or none: {', '.join(unknown) or repr(getattr(args, name))}"
                         f"; allowed: {', '.join(allowed)}")
        setattr(args, name, chosen)
    try:
        args.images = [int(value) for value in args.images.split(",") if value]
    except ValueError:
        parser.error(f"--images must be comma-separated ints. Received: {args.images!r}")
    if not args.images or min(args.images) < 1:
        parser.error(f"--images must be ints >= 1. Received: {args.images}")
    for name, least in (("batch_size", 1), ("repeats", 1)):
        if getattr(args, name) < least:
            parser.error(f"--{name} must be >= {least}. Received: {getattr(args, name)}")
    return args


def measure_here(preset, strategy, mode, images, batch_size):
    """`{"seconds", "gates", "top1", "batches"}` of one probe pass in this process."""
    import tensorflow as tf

    if strategy == "mirrored":  # before anything initializes the devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np

    import dmnn_keras as dk
    from dmnn_keras.data import load_dataset
    from dmnn_keras.gates import gate_probe, image_batches, probe_outputs
    from dmnn_keras.training.strategy import make_strategy

    data = load_dataset("cifar10", "test", batch_size=batch_size, training=False,
                        max_examples=images)
    pixels, labels = map(np.concatenate, zip(*data.as_numpy_iterator()))
    if len(pixels) < images:
        raise ValueError(f"--images must be at most the {len(pixels):,} CIFAR-10 test images. "
                         f"Received: {images}")
    with make_strategy(strategy).scope():
        model = dk.from_preset(preset)
    probe, _ = gate_probe(model)
    start = time.perf_counter()
    outputs = probe_outputs(probe, image_batches(pixels, batch_size), compiled=mode == "compiled")
    seconds = time.perf_counter() - start
    gates = np.concatenate([g.reshape(len(pixels), -1) for g in outputs[1:]], axis=1)
    return {"seconds": seconds, "gates": hashlib.sha1(gates.astype(np.uint8).tobytes()).hexdigest(),
            "top1": float(np.mean(np.argmax(outputs[0], axis=-1) == labels)),
            "batches": -(-len(pixels) // batch_size)}


def measure(preset, strategy, mode, images, batch_size):
    """One measurement in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gate_reading", "--child", preset, strategy, mode,
         "--images", str(images), "--batch_size", str(batch_size)],
        capture_output=True, text=True, cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if result.returncode:
        raise RuntimeError(f"{preset} under {strategy}, {mode}, failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def section(results):
    lines = [
        "Seconds of one gate-probe pass (`dmnn_keras.gates.probe_outputs`) over the CIFAR-10 test "
        "images of a shipped preset, each in a fresh process, the modes alternating; `eager` calls "
        "the probe per batch, `compiled` runs `predict_on_batch` (its trace included). "
        "`predict_gates` runs compiled above `EAGER_PASS_BATCHES` (8) batches. `same gates`: every "
        "measurement of the row read identical gates (a digest of all of them).",
        "",
        "| preset | strategy | images / batches | eager: seconds (median) | compiled: seconds "
        "(median) | compiled / eager | same gates | top-1 | measurements |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    def order(key):  # preset, strategy, then images
        preset, strategy, images, batch_size = key.split("/")
        return preset, strategy, int(images), int(batch_size)

    for key in sorted(results, key=order):
        row = results[key]
        if not all(row.get(mode) for mode in MODES):
            continue
        preset, strategy, images, batch_size = key.split("/")
        median = {mode: statistics.median(r["seconds"] for r in row[mode]) for mode in MODES}
        seconds = {mode: ", ".join(f"{r['seconds']:.1f}" for r in row[mode]) for mode in MODES}
        runs = row["eager"] + row["compiled"]
        top1 = sorted({f"{100 * r['top1']:.2f}%" for r in runs})
        lines.append(
            f"| {preset} | {strategy} | {images} / {runs[0]['batches']} "
            f"| {median['eager']:.1f} ({seconds['eager']}) "
            f"| {median['compiled']:.1f} ({seconds['compiled']}) "
            f"| {median['compiled'] / median['eager']:.2f} "
            f"| {'yes' if len({r['gates'] for r in runs}) == 1 else 'NO'} | {', '.join(top1)} "
            f"| {len(row['eager'])} + {len(row['compiled'])} |")
    return "\n".join(lines)


def save(results, args):
    """Stores `results` and rewrites the section from every stored row."""
    from benchmarks.report import save_json, write_section

    save_json(RESULTS, results)
    write_section(SECTION, section(results), command=(
        f"TFDS_DATA_DIR=../shared/tfds python -m benchmarks.gate_reading --presets "
        f"{','.join(args.presets)} --strategies {','.join(args.strategies)} "
        f"--images {','.join(map(str, args.images))} --batch_size {args.batch_size} "
        f"--repeats {args.repeats}"))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure_here(*args.child, args.images[0], args.batch_size)))
        return
    results = {}
    if os.path.exists(RESULTS) and not args.fresh:
        with open(RESULTS) as f:
            results = json.load(f)
    for repeat in range(args.repeats):
        for preset in args.presets:
            for strategy in args.strategies:
                for images in args.images:
                    key = f"{preset}/{strategy}/{images}/{args.batch_size}"
                    for mode in MODES if repeat % 2 == 0 else MODES[::-1]:
                        runs = results.setdefault(key, {}).setdefault(mode, [])
                        if len(runs) > repeat:
                            continue
                        runs.append(measure(preset, strategy, mode, images, args.batch_size))
                        print(key, mode, runs[-1], flush=True)
                        save(results, args)


if __name__ == "__main__":
    main()
