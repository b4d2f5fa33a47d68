r"""Evaluates a saved dmnn_keras model or a trained preset on a dataset split; writes the report.

    python recipes/evaluate.py --model_path=runs/cpu/model.keras
    python recipes/evaluate.py --model_path=dmnn_resnet_cifar10  # a shipped preset
    python recipes/evaluate.py --model_path=m.keras --dataset=cifar10 --split=test \
        --max_examples=1000 --output_dir=runs/eval
    python recipes/evaluate.py --model_path=runs/cpu/model.keras --force_gates=1 \
        --recalibrate_batches=20  # the all-on network, with its own BatchNorm statistics

Writes into `--output_dir` (default: the model's directory + "/eval"; for a
shipped preset, runs/<preset>/eval):
report.json (top1_error, params, flops, executed_flops_mean, flops_ratio,
per-block execution rates, gate_dynamics, ...), flops_histogram.png (Fig. 5),
execution_heatmap.png (Fig. 7), flops_extremes.png (Fig. 6), and prints the
summary (for gated models with the gate dynamics: distinct per-image costs,
constant gates, spread of the FLOPs ratio, confidently correct vs
misclassified images) and the paper-style markdown table row.
"""

import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recipes import cli  # noqa: E402  (first: TensorFlow starts without its start-up logs)

FLAGS = flags.FLAGS

flags.DEFINE_string("model_path", None, "A .keras file saved by recipes/train.py, or a trained "
                    "preset: a shipped name such as dmnn_resnet_cifar10, or a preset directory.")
flags.DEFINE_string("dataset", "cifar10", "cifar10, cifar100, imagenet2012 or folder:<root>.")
flags.DEFINE_string("split", None, "Split (default: the dataset's eval split).")
flags.DEFINE_integer("max_examples", None, "Evaluate the first N examples only.")
flags.DEFINE_integer("batch_size", 250, "Evaluation batch size.")
flags.DEFINE_integer("image_size", None, "Eval crop size (default: the model's input size).")
flags.DEFINE_string("output_dir", None, "Where to write (default <model dir>/eval; for a "
                    "shipped preset runs/<preset>/eval).")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default $TFDS_DATA_DIR).")
flags.DEFINE_bool("figures", True, "Write the PNG figures.")
flags.DEFINE_float("force_gates", None,
                   "Gated models: evaluate with the gates forced to run this share of every "
                   "block's sub-blocks on every image (dk.force_gates; 1: the all-on network). "
                   "Default output_dir: <model dir>/eval_gates_<share>.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("recalibrate_batches", 0,
                     "First re-estimate every BatchNorm's moving statistics with the gates it "
                     "evaluates with, on this many augmented training batches of --batch_size "
                     "(dk.recalibrate_batch_norm; the saved model is not changed). With "
                     "--force_gates: the saved statistics are those of the learned gates.",
                     lower_bound=0)
flags.mark_flag_as_required("model_path")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from dmnn_keras.data import get_dataset_info

    try:
        info = get_dataset_info(FLAGS.dataset)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    start = time.perf_counter()
    import dmnn_keras as dk
    from dmnn_keras.training import evaluate_and_report
    from dmnn_keras.training import report as report_lib
    from dmnn_keras.presets import is_preset, list_presets, load_metadata
    from dmnn_keras.training.model_files import load_model_or_preset

    try:
        model = load_model_or_preset(FLAGS.model_path)
    except ValueError as error:  # a missing or corrupt file, or not a preset
        raise cli.Failure(error) from None
    preset = is_preset(FLAGS.model_path)
    eval_dir = "eval"
    if FLAGS.force_gates is not None:
        try:
            model = dk.force_gates(model, FLAGS.force_gates)
        except ValueError as error:
            raise cli.Failure(f"--force_gates={FLAGS.force_gates:g}: {error}") from None
        eval_dir = f"eval_gates_{FLAGS.force_gates:g}"
    image_size = FLAGS.image_size or int(model.input.shape[1])
    if FLAGS.recalibrate_batches:
        train = dk.data.load_dataset(FLAGS.dataset, info.train_split, batch_size=FLAGS.batch_size,
                                     training=True, image_size=image_size,
                                     data_dir=FLAGS.data_dir, seed=0)
        recalibrated = dk.recalibrate_batch_norm(model, train, batches=FLAGS.recalibrate_batches)
        eval_dir += f"_bn{FLAGS.recalibrate_batches}"
    model_dir = os.path.dirname(FLAGS.model_path.rstrip(os.sep)) or "."
    model_name = os.path.splitext(os.path.basename(FLAGS.model_path.rstrip(os.sep)))[0]
    if preset:  # the package's directory is not the user's: runs/<preset> for a shipped name
        model_dir = os.path.join("runs", model_name) if (
            FLAGS.model_path in list_presets()) else FLAGS.model_path
    output_dir = FLAGS.output_dir or os.path.join(model_dir, eval_dir)
    os.makedirs(output_dir, exist_ok=True)
    run_flags = {name: FLAGS[name].value for name in
                 ("model_path", "dataset", "split", "max_examples", "batch_size", "image_size",
                  "force_gates", "recalibrate_batches")}
    run_flags["model"] = model_name
    config_path = os.path.join(os.path.dirname(FLAGS.model_path), "config.json")
    config = None
    if preset:  # the recipe that trained it, in its metadata (save_to_preset writes one)
        try:
            config = load_metadata(FLAGS.model_path).get("training", {}).get("config")
        except FileNotFoundError:  # a preset directory made by hand
            pass
    elif os.path.exists(config_path):  # written by recipes/train.py next to the model
        import json

        with open(config_path) as f:
            config = json.load(f)
    if config:
        run_flags["model"] = config.get("model", model_name)
        run_flags["flops_target"] = config.get("flops_target")
    report = evaluate_and_report(
        model, run_flags, FLAGS.dataset, FLAGS.split or info.eval_split, output_dir,
        max_examples=FLAGS.max_examples, batch_size=FLAGS.batch_size, data_dir=FLAGS.data_dir,
        figures=FLAGS.figures, image_size=image_size, verbose=True,
    )
    if FLAGS.recalibrate_batches:
        report["recalibration_images"] = recalibrated
    report["wall_time_seconds"] = time.perf_counter() - start
    report_lib.write_report(report, output_dir)
    print("\n" + report_lib.summary(report, output_dir))


if __name__ == "__main__":
    cli.run(main)
