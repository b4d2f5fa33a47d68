"""Builds the shipped presets (dmnn_keras/presets/) from trained rows of benchmarks/cifar10_pareto.py.

    python -m benchmarks.make_presets ROW [--name NAME] [--twin_name NAME] [--keep_twin]
                                          [--fix_constant_gates]

ROW is a DMNN or early-exit row of `benchmarks/results/cifar10_pareto.json`
(e.g. `dmnn_t050_s0`, `exits_joint_t059_s0`); its static twin (the model it
was warm-started from, or for a row trained from the start the twin it is
measured against, e.g. `static_s0`) is written too, unless `--keep_twin`
leaves the shipped twin preset as it is. For each of the two: `runs/pareto/<row>/model.keras`
becomes a preset (weights only: no optimizer state, no teacher) whose card
gives the command and the resolved recipe (the run's `config.json`), the
row's measured top-1, MACs per image and TFLite latency ratio, and the top-1 on
the first 1,000 CIFAR-10 test images, measured here (what
`tests/test_presets.py` checks). The preset is loaded back and must give the
run model's logits and gates on those images. Needs CIFAR-10 in
`TFDS_DATA_DIR`; reads `runs/` only.

`--fix_constant_gates` ships a DMNN row with the gates that no calibration
image switches made constants (`dk.fix_constant_gates`, as
`benchmarks/fixed_gates.py` fixes them): its TFLite export has no `IF` op
for them. Its card then gives that benchmark's figures of the fixed model
(top-1, MACs, latency ratio to `static_s0`), so the row must have been
measured there first (`python -m benchmarks.fixed_gates --rows ROW`).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.cifar10_pareto import ROWS, RUNS, load_results, model_path  # noqa: E402
from benchmarks.fixed_gates import BATCH_SIZE, CALIBRATION_BATCHES, calibration_images  # noqa: E402
from benchmarks.fixed_gates import RESULTS as FIXED_RESULTS  # noqa: E402

CHECK_IMAGES = 1000
DMNN_PRESET, TWIN_PRESET = "dmnn_resnet_cifar10", "resnet_cifar10"
# Bookkeeping fields of a run's config.json, left out of the card's recipe.
NOT_RECIPE = ("output_dir", "verbose", "figures", "tpu", "strategy", "data_dir", "num_replicas",
              "backup_every_steps", "latency_images", "deterministic")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", help="a DMNN or early-exit row of cifar10_pareto.json, e.g. "
                        "dmnn_t050_s0")
    parser.add_argument("--name", default=DMNN_PRESET, help="the DMNN's preset name")
    parser.add_argument("--twin_name", default=TWIN_PRESET, help="its static twin's preset name")
    parser.add_argument("--keep_twin", action="store_true",
                        help="leave the shipped twin preset as it is (write the row's only)")
    parser.add_argument("--fix_constant_gates", action="store_true",
                        help="ship the DMNN with its constant gates fixed, with the figures "
                        "benchmarks/fixed_gates.py measured of it (run that first)")
    return parser.parse_args(argv)


def first_test_images(count=CHECK_IMAGES):
    """The first `count` CIFAR-10 test images and labels, as arrays (raw pixels in [0, 255])."""
    from dmnn_keras.data import load_dataset

    data = load_dataset("cifar10", "test", batch_size=count, training=False, max_examples=count)
    images, labels = next(data.as_numpy_iterator())
    return images, labels


def top1(logits, labels):
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def run_config(row):
    with open(os.path.join(RUNS, row, "config.json")) as f:
        return json.load(f)


def twin_of(row, results):
    """The static row of dynamic `row`: its `init_from`, or (trained from the start) its reference."""
    config = run_config(row)
    if not (config.get("model", "").startswith("dmnn") or config.get("early_exits")):
        raise SystemExit(f"row {row} is static (model {config.get('model')!r}, no early exits): "
                         "give a DMNN or early-exit row")
    if config.get("init_from"):
        return os.path.basename(os.path.dirname(config["init_from"]))
    reference = results.get(row, {}).get("reference")
    if not reference:
        raise SystemExit(f"row {row} has neither an init_from in its config.json nor a reference "
                         "twin in the results file")
    return reference


def command(row, twin):
    if row not in ROWS:
        return None
    rows = f"{twin},{row}" if twin else row
    return f"TFDS_DATA_DIR=../shared/tfds python -m benchmarks.cifar10_pareto --only {rows}"


def fixed_metrics(row, result, fixed):
    """The metrics of `row` with its constant gates fixed, from its `fixed_gates.json` entry."""
    if fixed is None:
        raise SystemExit(f"--fix_constant_gates: row {row} is not in benchmarks/results/"
                         f"fixed_gates.json; run python -m benchmarks.fixed_gates --rows {row}")
    if fixed["reference"] != "static_s0":
        raise SystemExit(f"--fix_constant_gates: row {row}'s twin is {fixed['reference']!r}; "
                         "benchmarks/fixed_gates.py measures latency against static_s0 only")
    scale = fixed["macs_ratio_to_twin_after"] / fixed["macs_ratio_to_twin_before"]
    return {"top1": fixed["top1_after"], "macs": result["macs"] * scale,
            "macs_ratio_to_twin": fixed["macs_ratio_to_twin_after"],
            "flops_ratio": result["flops_ratio"] * scale,
            "latency_ratio_median": fixed["latency_ratio_median_to_static_s0_after"],
            "latency_ratio_mean": fixed["latency_ratio_mean_to_static_s0_after"]}


def fixing_paragraph(row, result, fixed):
    """The card's account of the fixed gates: how, how many, and the row as trained."""
    return (f"{fixed['fixed_gates']} of its {fixed['gates']} gates are constants: no image of "
            f"{CALIBRATION_BATCHES * BATCH_SIZE:,} un-augmented training images switched them, "
            "so `dk.fix_constant_gates` fixed them and its TFLite export has no `IF` op for "
            f"them. Measured by `python -m benchmarks.fixed_gates --rows {row}`; as trained "
            f"(every gate decided per image), the row has {100 * result['top1']:.2f}% top-1 and "
            f"TFLite latency {fixed['latency_ratio_median_to_static_s0_before']:.2f}x the twin's "
            "(median, in the same measurement).")


def card(row, result, metrics, config, run, twin_preset, fixed=None):
    """The Markdown of the model card after its title: what was measured and how it was trained.

    `fixed`: the row's `fixed_gates.json` entry when it ships with fixed gates.
    """
    reference = (f"{metrics['macs_ratio_to_twin']:.2f}x the static twin's, preset `{twin_preset}`"
                 if twin_preset else "the reference the DMNN rows are measured against")
    gates = "learned gates, the constant ones fixed" if fixed else "learned gates"
    recipe = ", ".join(f"{k}={v}" for k, v in config.items() if k not in NOT_RECIPE and v is not None)
    how = (f"    {run}\n" if run else "an earlier variant of `benchmarks/cifar10_pareto.py`, not "
           f"rerun: {result.get('note', '')}\n")
    return "\n".join([
        f"Trained on CIFAR-10 (32x32 RGB in [0, 255], 10 logits) by `benchmarks/cifar10_pareto.py`, "
        f"row `{row}` of `benchmarks/results/cifar10_pareto.json`.",
        "",
        "## Measured",
        "",
        "| figure | value |",
        "|---|---|",
        f"| top-1, the 10,000 CIFAR-10 test images | {100 * metrics['top1']:.2f}% |",
        f"| top-1, the first {CHECK_IMAGES:,} test images (`tests/test_presets.py` checks it) "
        f"| {100 * metrics['top1_first_1000']:.2f}% |",
        f"| MACs per image (mean executed) | {metrics['macs'] / 1e6:.2f} M ({reference}) |",
        f"| FLOPs ratio (executed / its own full MACs) | {metrics['flops_ratio']:.3f} |",
        f"| TFLite batch-1 latency / the twin's (1 thread, {gates}; median, mean) "
        f"| {metrics['latency_ratio_median']:.2f}x, {metrics['latency_ratio_mean']:.2f}x |",
        "",
        *([fixing_paragraph(row, result, fixed), ""] if fixed else []),
        "## Training",
        "",
        how,
        f"Recipe (the run's resolved `config.json`): {recipe}.",
    ])


def make_preset(row, name, images, labels, results, twin_preset=None, fixed=None):
    """Writes `dmnn_keras/presets/<name>` from `runs/pareto/<row>`; returns its metrics.

    `twin_preset`: the preset name of the DMNN's static twin (None for the twin itself).
    `fixed`: the row's `fixed_gates.json` entry, to ship it with its constant gates fixed.
    """
    import dmnn_keras as dk
    from dmnn_keras.training.model_files import load_keras_model

    if row not in results:
        raise SystemExit(f"row {row} is not in the results file; measured rows: {sorted(results)}")
    model = load_keras_model(model_path(row), "model", compile=False)
    model.name = name  # not the run's "dynamic_res_net_3"
    result, config = results[row], run_config(row)
    metrics = {key: result[key] for key in ("top1", "macs", "macs_ratio_to_twin", "flops_ratio",
                                            "latency_ratio_median", "latency_ratio_mean")}
    metadata = {"dataset": "cifar10", "twin": twin_preset}
    if fixed is not None:
        metrics = fixed_metrics(row, result, fixed)
        metadata["fixed_gates"] = dk.fix_constant_gates(model, calibration_images())
        count = sum(value is not None for block in metadata["fixed_gates"].values()
                    for value in block)
        if count != fixed["fixed_gates"]:
            raise SystemExit(f"--fix_constant_gates: {count} gates of {row} fixed here, "
                             f"{fixed['fixed_gates']} in fixed_gates.json: measure it again")
    gates, logits = dk.predict_gates(model, images, return_logits=True)
    metrics["top1_first_1000"] = top1(logits, labels)
    run = command(row, twin_of(row, results) if twin_preset else None)
    directory = os.path.join(dk.presets.PRESETS_DIR, name)
    dk.save_to_preset(model, directory,
                      card=card(row, result, metrics, config, run, twin_preset, fixed),
                      metadata={**metadata, "metrics": metrics,
                                "training": {"row": row, "command": run, "config": config}})
    loaded = dk.from_preset(name)
    loaded_gates, loaded_logits = dk.predict_gates(loaded, images, return_logits=True)
    np.testing.assert_array_equal(loaded_logits, logits)
    for block, block_gates in gates.items():
        np.testing.assert_array_equal(loaded_gates[block], block_gates)
    print(f"{directory}: {row}, top-1 {metrics['top1_first_1000']:.3f} on the first "
          f"{CHECK_IMAGES} test images; same logits and gates as {model_path(row)}", flush=True)
    return metrics


def main(argv=None):
    args = parse_args(argv)
    results = load_results()
    twin = twin_of(args.row, results)
    images, labels = first_test_images()
    if args.keep_twin:
        import dmnn_keras as dk

        metadata = os.path.join(dk.presets.PRESETS_DIR, args.twin_name, "metadata.json")
        if not os.path.exists(metadata):
            raise SystemExit(f"--keep_twin: no shipped preset {args.twin_name!r} to keep")
        with open(metadata) as f:
            shipped = json.load(f).get("training", {}).get("row")
        if shipped != twin:
            raise SystemExit(f"--keep_twin: the shipped {args.twin_name!r} is row {shipped!r}, "
                             f"not {args.row}'s twin {twin!r}")
    else:
        make_preset(twin, args.twin_name, images, labels, results)
    fixed = None
    if args.fix_constant_gates:
        with open(FIXED_RESULTS) as f:
            fixed = json.load(f).get(args.row)
    make_preset(args.row, args.name, images, labels, results, twin_preset=args.twin_name,
                fixed=fixed)


if __name__ == "__main__":
    main()
