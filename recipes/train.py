"""Trains a dmnn_keras model, evaluates it and writes its report and figures.

    python recipes/train.py                       # the main job (preset "cpu", ~16 min on 2 cores)
    python recipes/train.py --config=cifar10 --model=dmnn_resnet50 --strategy=mirrored
    python recipes/train.py --config=imagenet --model=dmnn_mobilenet_v2 --data_dir=/data/tfds
    python recipes/train.py --config=cpu_scratch --dataset=folder:photos --init_from=model.keras

Flags left unset take the preset's value (`--config`, default "cpu"); see
`dmnn_keras.training.presets` for the presets. Output directory (default
`runs/<config>`): model.keras, config.json, training_log.csv, logs/
(TensorBoard: `tensorboard --logdir runs/<config>/logs`; logs/gates has the
per-block execution rates and the per-image FLOPs histogram), backup/ (while
training), report.json, flops_histogram.png, execution_heatmap.png,
flops_extremes.png.

Ctrl-C or SIGTERM (a preempted machine) finishes the current step, saves the
training state in backup/ and exits (130 / 143); rerunning the same command
resumes at that step (--restart discards the backup and starts over).
backup/ is written at the end of every epoch, and every N steps with
--backup_every_steps=N. Under --strategy=multi_worker a signal to any worker
stops every worker after the same step; a worker waits --peer_timeout seconds
for the others. See docs/troubleshooting.md for the error messages.
"""

import dataclasses
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recipes import cli  # noqa: E402  (first: TensorFlow starts without its start-up logs)
from dmnn_keras.layers.multi_path_block import SPLITS  # noqa: E402
from dmnn_keras.layers.resource_loss import RATE_LOSSES  # noqa: E402
from dmnn_keras.training import presets, registry  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_enum("config", presets.DEFAULT_PRESET, sorted(presets.PRESETS), "Named preset.")
flags.DEFINE_string("model", None, f"Model builder, one of {sorted(registry.MODELS)}.")
flags.DEFINE_string("dataset", None, "cifar10, cifar100, imagenet2012 or folder:<root>.")
flags.DEFINE_list("groups", None, "Sub-blocks per block (gated models): an int, or one per "
                  "stage, e.g. 1,1,4,4 (ResNet) or 1,1,1,1,2,2,2 (MobileNetV2).")
flags.DEFINE_float("flops_target", None, "Target FLOPs ratio in (0, 1] (gated models).")
flags.DEFINE_float("resource_loss_weight", None, "Weight lambda of the resource loss "
                   "(default: the builder's).")
flags.DEFINE_bool("category_supervision", None, "Train the controllers' category heads.")
flags.DEFINE_float("width_multiplier", None, "Width multiplier (resnet, dmnn_resnet; alpha for "
                   "mobilenet_v2, dmnn_mobilenet_v2).")
flags.DEFINE_list("stack_sizes", None, "Blocks per stage, 4 ints (resnet, dmnn_resnet).")
flags.DEFINE_integer("image_size", None, "Crop size (default: the dataset's).")
flags.DEFINE_integer("epochs", None, "Training epochs.")
flags.DEFINE_integer("batch_size", None, "GLOBAL batch size (split over replicas).")
flags.DEFINE_float("learning_rate", None, "Learning rate for a global batch of 256; the "
                   "optimizer uses learning_rate * batch_size / 256.")
flags.DEFINE_enum("optimizer", None, list(presets.OPTIMIZERS), "SGD with momentum, or Nesterov.")
flags.DEFINE_float("momentum", None, "SGD momentum.")
flags.DEFINE_float("weight_decay", None, "Weight decay (default: preset, else 1e-4 ResNet, "
                   "4e-5 MobileNet).")
flags.DEFINE_enum("weight_decay_mode", None, list(presets.WEIGHT_DECAY_MODES),
                  "l2: coupled L2 on kernels (PyTorch-style); decoupled: Keras optimizer weight_decay.")
flags.DEFINE_enum("schedule", None, list(presets.SCHEDULES), "Learning-rate schedule.")
flags.DEFINE_list("decay_epochs", None, "Epochs where the step schedule divides the lr by 10.")
flags.DEFINE_float("warmup_epochs", None, "Linear warmup epochs.")
flags.DEFINE_integer("max_train_examples", None, "Use only the first N training examples.")
flags.DEFINE_integer("max_eval_examples", None, "Evaluate on the first N eval examples only.")
flags.DEFINE_string("output_dir", None, "Run directory (default runs/<config>).")
flags.DEFINE_string("strategy", None, f"One of {list(presets.STRATEGIES)}.")
flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu ('' = local TPU / $TPU_NAME).")
flags.DEFINE_bool("mixed_precision", None, "Train with the Keras mixed-precision policy "
                  "--precision_policy (default mixed_float16, with loss scaling).")
flags.DEFINE_enum("precision_policy", "mixed_float16", ["mixed_float16", "mixed_bfloat16"],
                  "Policy of --mixed_precision: mixed_float16 for GPUs, mixed_bfloat16 for CPUs "
                  "and TPUs (both run on CPU).")
flags.DEFINE_integer("seed", None, "Random seed (weights, data order, augmentation, gate noise).")
flags.DEFINE_bool("deterministic", None, "TF op determinism (tf.config.experimental."
                  "enable_op_determinism): CPU runs repeat bit for bit without it; for GPUs.")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default $TFDS_DATA_DIR).")
flags.DEFINE_bool("figures", None, "Write the PNG figures.")
flags.DEFINE_integer("verbose", None, "Keras fit verbosity: 1 progress bar, 2 one line per epoch.")
flags.DEFINE_integer("backup_every_steps", None, "Also back up every N training steps (default "
                     "0: at each epoch's end), so a preemption loses at most N steps.")
flags.DEFINE_bool("restart", None, "Discard the backup of an interrupted run (backup/) and train "
                  "from the start (on every worker under multi_worker).")
flags.DEFINE_float("peer_timeout", None, "--strategy=multi_worker: seconds a worker waits for the "
                   "others to start, and for them to reach the step where all stop after a "
                   f"signal, before giving up (default {presets.PEER_TIMEOUT:g}).")
# The dynamic-network recipe (DMNN models): warm start, distillation, gate schedules.
flags.DEFINE_enum("block_split", None, list(SPLITS), "DMNN ResNet sub-blocks: "
                  "'preserve' keeps the block's parameters (paper), 'partition' splits the static "
                  "block's channels (warm-startable), 'cross' also keeps the 3x3 between "
                  "sub-blocks that run together (all on: the static block).")
flags.DEFINE_bool("switchable_norms", None, "--block_split=cross: a BatchNorm per set of "
                  "running sub-blocks after the 3x3 and the last 1x1 (switchable BatchNorm), "
                  "whose sums depend on the set.")
flags.DEFINE_float("dual_step", None, "Step of the resource loss's Lagrange multiplier per "
                   "training step (0: the paper's fixed penalty; default: the builder's).")
flags.DEFINE_enum("rate_loss", None, list(RATE_LOSSES), "DMNN resource loss: execution "
                  "rates per block (paper: block), per sub-block (gate), or per block with every "
                  "sub-block's rate kept in [0.1, 0.9] (bounded).")
flags.DEFINE_float("uncertainty_spread", None, "DMNN resource loss: per-image FLOPs targets "
                   "raised by this times the image's prediction entropy (normalised, minus the "
                   "batch mean), so that hard images run more sub-blocks (default: 0, none).")
flags.DEFINE_string("difficulty_head", None, "DMNN: a block (e.g. conv3_block1) after which a "
                    "classifier head, trained on the labels, gives the later controllers its "
                    "uncertainty as an input and, with uncertainty_spread, the per-image FLOPs "
                    "targets (default: none; the main job's ResNet DMNN: conv3_block1, and "
                    "--difficulty_head= turns it off).")
flags.DEFINE_float("gate_logit_bound", None, "In training, penalise gate logits beyond "
                   "+-this value (mean squared excess) so the gates' straight-through gradient "
                   "does not vanish (default: none).")
flags.DEFINE_float("gate_information_weight", None, "In training, reward gates whose "
                   "decisions depend on the image: minus this times their mutual information "
                   "with the batch's images (default: 0, none).")
flags.DEFINE_float("forced_gate_rate", None, "Train with this share of sub-blocks on for every "
                   "image (1.0: the all-on DMNN, pre-trained before --init_from gates it).")
flags.DEFINE_integer("teacher_epochs", None, "Train the static twin this many epochs first (in "
                     "<output_dir>/teacher), warm-start the DMNN from it and distil from it.")
flags.DEFINE_float("teacher_learning_rate", None, "Learning rate (for a batch of 256) of the "
                   "twin trained by --teacher_epochs (default: --learning_rate).")
flags.DEFINE_string("init_from", None, "Start from this trained .keras model or preset (a shipped "
                    "name such as resnet_cifar10, or a preset directory) of the library: a "
                    "static one is warm-started into a DMNN, a DMNN keeps its gates; with "
                    "--early_exits a static or early-exit one gets the exits (an early-exit "
                    "one keeps its heads); new class heads (classifier, difficulty head, "
                    "exit heads) when --dataset has another class count.")
flags.DEFINE_string("teacher", None, "Distil from this .keras model or preset (same classes).")
flags.DEFINE_float("distill_weight", None, "Weight of the distillation KL (0 = off).")
flags.DEFINE_float("distill_temperature", None, "Distillation temperature.")
flags.DEFINE_float("inplace_distill_weight", None, "DMNN: also train the full network (every "
                   "gate on) on the labels each step and distil it into the gated network with "
                   "this weight (the sandwich rule; about 2x the step; 0 = off, no --teacher).")
flags.DEFINE_float("target_schedule_epochs", None, "Anneal the FLOPs target from 1.0 to "
                   "--flops_target over this many epochs (0 = off).")
flags.DEFINE_integer("target_correction_batches", None, "After the annealing, at the end of "
                     "every epoch, set the training FLOPs target to --flops_target plus the gap "
                     "between the epoch's training FLOPs ratio and the inference ratio on N "
                     "un-augmented training batches (0 = off).")
flags.DEFINE_boolean("correction_shifts_gates", None, "With --target_correction_batches, also "
                     "shift the gate thresholds at each correction so the inference FLOPs ratio "
                     "on the clean batches meets --flops_target during training.")
flags.DEFINE_float("start_temperature", None, "Gumbel temperature in the first epoch "
                   "(annealed geometrically to --end_temperature).")
flags.DEFINE_float("end_temperature", None, "Gumbel temperature in the last epoch.")
flags.DEFINE_integer("noise_off_epochs", None, "Train the last N epochs without gate noise.")
flags.DEFINE_integer("calibrate_flops_batches", None, "After training, shift every gate "
                     "threshold by one constant so the FLOPs ratio meets --flops_target on N "
                     "training batches, and recalibrate BatchNorm on them (0 = off). With "
                     "--early_exits: set the exits' confidence threshold instead.")
flags.DEFINE_boolean("fix_constant_gates", None, "With --calibrate_flops_batches: after the "
                     "calibration, fix the gates that none of those batches switches "
                     "(dmnn_keras.fix_constant_gates): TFLite runs their sub-blocks without IF.")
flags.DEFINE_integer("latency_images", None, "With --teacher_epochs, or a static --init_from: "
                     "measure the TFLite latency of the trained network and of that twin on N "
                     "test images (0 = off).")
flags.DEFINE_list("early_exits", None, "Static models: exits after these blocks, e.g. "
                  "conv3_block1,conv4_block1 (an EarlyExitModel: a confident image stops at the "
                  "first exit; with --calibrate_flops_batches the confidence threshold meets "
                  "--flops_target).")
flags.DEFINE_list("compare_exits", None, "DMNN with --teacher_epochs: also fine-tune the twin "
                  "with exits after these blocks (as --early_exits), at the DMNN's share of the "
                  "twin's MACs, in <output_dir>/exits, and print it beside the twin and the DMNN "
                  "(the main job: conv3_block1,conv4_block1; --compare_exits= turns it off).")
flags.DEFINE_float("exit_loss_weight", None, "With --early_exits: every exit's loss weight "
                   "(the final classifier's is 1).")
flags.DEFINE_integer("recalibrate_batches", None, "After training, re-estimate BatchNorm "
                     "statistics with the inference gates on N training batches (0 = off).")

# Every `TrainConfig` field is a flag of the same name; `config` (the preset) is passed first.
FIELDS = tuple(field.name for field in dataclasses.fields(presets.TrainConfig)
               if field.name != "config")


def _ints(name, values):
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise ValueError(f"{name} must be comma-separated ints. Received: {name}={values!r}") from None


def config_from_flags():
    """The resolved `TrainConfig` of the parsed flags (ValueError on bad values)."""
    overrides = {name: FLAGS[name].value for name in FIELDS}
    if overrides["mixed_precision"] is not None:
        overrides["mixed_precision"] = FLAGS.precision_policy if FLAGS.mixed_precision else "none"
    if overrides["stack_sizes"] is not None:
        overrides["stack_sizes"] = _ints("stack_sizes", overrides["stack_sizes"])
    if overrides["groups"] is not None:
        groups = _ints("groups", overrides["groups"])
        overrides["groups"] = groups[0] if len(groups) == 1 else groups
    for name in ("early_exits", "compare_exits"):
        if overrides[name] is not None:
            overrides[name] = tuple(overrides[name])
    if overrides["decay_epochs"] is not None:
        overrides["decay_epochs"] = _ints("decay_epochs", overrides["decay_epochs"])
    return presets.resolve_config(FLAGS.config, **overrides)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        config = config_from_flags()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    from dmnn_keras.training import report as report_lib
    from dmnn_keras.training import run_training
    from dmnn_keras.training.callbacks import BackupError
    from dmnn_keras.training.model_files import ModelFileError
    from dmnn_keras.training.strategy import ClusterError

    try:
        report = run_training(config)
    except (ModelFileError, BackupError, ClusterError) as error:  # a corrupt --init_from /
        # --teacher archive, a broken backup, a worker missing
        raise cli.Failure(error) from None
    if report.get("chief", True):
        print("\n" + report_lib.summary(report, config.output_dir))


def interrupted_hint():
    """What a rerun of the same command does after an interruption outside `fit`."""
    from dmnn_keras.training.callbacks import BACKUP_DIR, has_backup

    output_dir = config_from_flags().output_dir
    if has_backup(output_dir):
        return (f"The training state is saved in {os.path.join(output_dir, BACKUP_DIR)}: "
                "rerun the same command to resume.")
    return "Nothing to resume: rerunning the same command starts over."


if __name__ == "__main__":
    cli.run(main, interrupted_hint)
