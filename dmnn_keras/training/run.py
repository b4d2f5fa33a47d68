"""`run_training(config)`: train, save, evaluate, write the report and figures."""

import dataclasses
import json
import os
import time

import keras

from dmnn_keras.data import get_dataset_info, load_dataset
from dmnn_keras.flops_calibration import first_exit_share
from dmnn_keras.gates import bound_gate_logits, reward_gate_information
from dmnn_keras.keras_compat import cache_saving_skipsets, nested_layers
from dmnn_keras.profiling import profile
from dmnn_keras.training import callbacks as callbacks_lib
from dmnn_keras.training import figures as figures_lib
from dmnn_keras.training import report as report_lib
from dmnn_keras.training.evaluation import eval_dataset, evaluate_model, progress
from dmnn_keras.training.model_files import ModelFileError, load_model_or_preset
from dmnn_keras.training.presets import (
    GATE_FIELDS, TrainConfig, check_config, resolve_config, scaled_learning_rate, update_config,
)
from dmnn_keras.training.gate_schedules import (
    BatchNormRecalibration, ConstantGateFixing, FlopsCalibration, FlopsTargetSchedule,
    GateNoiseSchedule,
)
from dmnn_keras.training.registry import build_model, resource_loss_kwargs, static_twin_name
from dmnn_keras.training.schedules import make_schedule
from dmnn_keras.training.strategy import (
    Peers, is_chief, make_strategy, patch_multi_worker_build, worker_index,
)

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
TEACHER_DIR = "teacher"
EXITS_BESIDE_DIR = "exits"  # compare_exits: the early-exit network trained beside a DMNN
REBALANCE_BATCHES = 10
EVAL_BATCH_SIZE = 250
GATE_LOG_IMAGES = 256  # TensorBoard's gate logs: the first eval images (at most max_eval_examples)
L2_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def add_l2(model, weight_decay):
    """Adds `weight_decay / 2 * ||kernel||^2` of every conv/dense kernel to the model's losses.

    Sets the `regularizer` of the kernel variables (BatchNorm and biases keep
    none), so the gradient gains `weight_decay * kernel` (coupled L2, as
    PyTorch's SGD weight_decay). The saved model carries no regularizer.
    """
    regularizer = keras.regularizers.L2(weight_decay / 2.0)
    count = 0
    for layer in nested_layers(model):
        if isinstance(layer, L2_LAYERS) and getattr(layer, "kernel", None) is not None:
            layer.kernel.regularizer = regularizer
            count += 1
    return count


def make_optimizer(config, steps_per_epoch):
    """SGD (or Nesterov SGD) with the config's schedule and weight decay."""
    schedule = make_schedule(
        config.schedule, scaled_learning_rate(config), steps_per_epoch, config.epochs,
        config.decay_epochs, config.warmup_epochs,
    )
    decoupled = config.weight_decay if config.weight_decay_mode == "decoupled" else None
    optimizer = keras.optimizers.SGD(
        learning_rate=schedule, momentum=config.momentum,
        nesterov=config.optimizer == "nesterov", weight_decay=decoupled or None,
    )
    if decoupled:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def _set_policy(name):
    keras.mixed_precision.set_dtype_policy("float32" if name == "none" else name)


def _steps(dataset):
    count = int(dataset.cardinality())
    if count < 0:
        count = sum(1 for _ in dataset)
    return count


def evaluate_and_report(model, config_dict, dataset, split, output_dir, max_examples=None,
                        batch_size=EVAL_BATCH_SIZE, data_dir=None, figures=True, image_size=None,
                        verbose=False, **extra):
    """Evaluates `model` on `dataset/split`, writes `report.json` and the figures; returns the report.

    `verbose`: print each stage (FLOPs, logits, figures) and its time.
    """
    start = time.perf_counter()
    info = get_dataset_info(dataset)
    evaluation = evaluate_model(model, dataset, split, batch_size, max_examples, data_dir,
                                image_size, verbose=verbose)
    names = []
    if figures:
        with progress("  figures", verbose):
            names = figures_lib.write_figures(
                evaluation, dataset, info.num_classes, info.category_names, output_dir,
                title=f"{config_dict.get('model', model.name)} on {dataset}",
            )
    report = report_lib.build_report(
        evaluation, config_dict.get("model", model.name), dataset, split or info.eval_split,
        flags=config_dict, figures=names, eval_seconds=time.perf_counter() - start, **extra,
    )
    report_lib.write_report(report, output_dir)
    return report


def exit_model(config, backbone):
    """`EarlyExitModel` on a newly built static `backbone` with the config's exits (ValueError: no fit)."""
    from dmnn_keras.models.early_exit import EarlyExitModel

    return EarlyExitModel(backbone, exits=tuple(config.early_exits),
                          exit_loss_weight=config.exit_loss_weight)


def print_init_from(init_from, replaced, what):
    """Prints what the run took from `init_from`: the class heads made new (`replaced`), `what` it kept."""
    made = "".join(f"new {name} {shapes}; " for name, shapes in replaced.items())
    kept = "every other weight" if replaced else "every weight"
    print(f"init_from={init_from}: {made}{kept} kept ({what})", flush=True)


def finished_report(directory):
    """The report of a run already finished in `directory` (its model and report saved), else None."""
    report_path = os.path.join(directory, report_lib.REPORT_FILE)
    if not (os.path.exists(os.path.join(directory, MODEL_FILE)) and os.path.exists(report_path)):
        return None
    with open(report_path) as f:
        return json.load(f)


def exits_beside_config(config):
    """The `compare_exits` run of a DMNN `config`: its static twin with those exits, in `<output_dir>/exits`.

    The same recipe (epochs, learning rate, distillation, calibration
    batches) without the DMNN's gate fields; `flops_target` is set by
    `train_exits_beside`.
    """
    return dataclasses.replace(
        config, model=static_twin_name(config.model), early_exits=tuple(config.compare_exits),
        compare_exits=(), output_dir=os.path.join(config.output_dir, EXITS_BESIDE_DIR),
        figures=False, **{name: TrainConfig.__dataclass_fields__[name].default
                          for name in GATE_FIELDS if name != "calibrate_flops_batches"},
    )


def exits_beside_target(config, num_classes, input_shape):
    """The `compare_exits` network's `flops_target`: the DMNN's executed MACs over its own full MACs.

    `flops_target * DMNN full MACs / exits model full MACs`, from the
    architectures alone, so a block name that does not exist or a share below
    what the first exit runs is a ValueError before anything trains.
    """
    exits_config = exits_beside_config(config)
    try:
        exits = exit_model(exits_config, build_model(exits_config, num_classes, input_shape))
    except ValueError as error:
        raise ValueError(f"compare_exits={tuple(config.compare_exits)!r} does not fit the twin "
                         f"{exits_config.model!r}: {error}") from None
    target = config.flops_target * profile(build_model(config, num_classes, input_shape))[
        "flops"] / profile(exits)["flops"]
    lowest = first_exit_share(exits)
    if target < lowest:
        raise ValueError(
            f"compare_exits={tuple(config.compare_exits)!r} cannot run as few MACs as the DMNN: "
            f"an image leaving at the first exit runs {lowest:.3f} of the exits model's MACs, "
            f"flops_target={config.flops_target} of the DMNN is {target:.3f} of them. Allowed: "
            "an earlier first exit or a higher flops_target")
    return round(target, 4)


def train_exits_beside(config, twin, strategy, flops_target):
    """Trains (or finds, when already trained) the `compare_exits` network of a DMNN run.

    From the DMNN's `twin` (its summary dict), aimed at `flops_target`
    (`exits_beside_target`). Returns a summary dict for the DMNN's report.
    """
    exits_config = exits_beside_config(config)
    report = finished_report(exits_config.output_dir)
    if report is None:
        exits_config = dataclasses.replace(exits_config, flops_target=flops_target)
        report = _run(check_config(exits_config), time.perf_counter(), strategy, twin=twin)
    return {
        "output_dir": exits_config.output_dir,
        "model": report["model"],
        "early_exits": list(report["flags"]["early_exits"]),
        "flops_target": report["flags"]["flops_target"],
        **{key: report[key] for key in ("top1_accuracy", "flops", "executed_flops_mean",
                                        "flops_ratio", "total_train_images",
                                        "total_train_seconds")},
        "latency_vs_twin": report.get("latency_vs_twin"),
    }


def gate_schedule_callbacks(config, clean=None):
    """The `FlopsTargetSchedule` / `GateNoiseSchedule` callbacks a config asks for.

    `clean`: un-augmented training images, for the target correction.
    """
    callbacks = []
    if config.target_schedule_epochs:
        correction = dict(images=clean, batches=config.target_correction_batches,
                          batch_size=config.batch_size,
                          shift_gates=config.correction_shifts_gates,
                          ) if config.target_correction_batches else {}
        callbacks.append(FlopsTargetSchedule(config.target_schedule_epochs, **correction))
    if config.noise_off_epochs or config.start_temperature is not None:
        callbacks.append(GateNoiseSchedule(config.start_temperature, config.end_temperature,
                                           config.noise_off_epochs))
    return callbacks


def train_static_twin(config, strategy=None):
    """Trains (or finds, when already trained) the static twin of `config.model` as the teacher.

    Same recipe, `config.teacher_epochs` epochs at `config.teacher_learning_rate`
    (default: `learning_rate`), in `<output_dir>/teacher`
    (rerunning resumes it like any run). Returns a summary dict: `model_path`,
    `top1_accuracy`, `flops`, `train_images`, `train_seconds`, `epochs`.
    """
    directory = os.path.join(config.output_dir, TEACHER_DIR)
    path = os.path.join(directory, MODEL_FILE)
    report = finished_report(directory)
    if report is None:
        static = config.model if config.early_exits else static_twin_name(config.model)
        twin = dataclasses.replace(
            config, model=static, epochs=config.teacher_epochs, early_exits=(), compare_exits=(),
            output_dir=directory, teacher_epochs=0, init_from=None, teacher=None,
            learning_rate=config.teacher_learning_rate or config.learning_rate,
            figures=False, **{name: TrainConfig.__dataclass_fields__[name].default
                              for name in GATE_FIELDS},
            decay_epochs=tuple(e for e in config.decay_epochs if e < config.teacher_epochs),
        )
        # The run's own strategy: a second MirroredStrategy in one process would reuse its
        # collective-op keys for other tensors.
        report = _run(check_config(twin), time.perf_counter(), strategy)
    return {
        "model_path": path,
        "model": report["model"],
        "epochs": config.teacher_epochs,
        "top1_accuracy": report["top1_accuracy"],
        "flops": report["flops"],
        "train_images": report.get("train_images", report["steps_per_epoch"] * config.batch_size
                                   * config.teacher_epochs),
        "train_seconds": report["train_seconds"],
    }


def run_training(config=None, **overrides):
    """Trains `config` (a `TrainConfig`, a preset name or None = the default preset).

    Writes into `config.output_dir`: `config.json`, `model.keras`,
    `training_log.csv`, `logs/` (TensorBoard; gated models: `logs/gates`,
    see `callbacks.GateLog`), `backup/` (while running), `report.json`, the
    figures; under multi-worker, workers other than the chief write only
    their backup and model into `output_dir/workers/<i>`.

    Args:
        config: a `TrainConfig`, a preset name of `dmnn_keras.training.PRESETS`
            ("cpu", "tiny", "cifar10", "imagenet", ...) or None ("cpu").
        **overrides: `TrainConfig` fields replacing the preset's (None values
            are ignored), e.g. `epochs=1`, `output_dir="runs/x"`.

    Returns:
        the report dict (see `dmnn_keras.training.report`); on non-chief
        workers a dict with only the training part.

    Example:
    ```python
    from dmnn_keras.training import run_training
    # one epoch on 256 CIFAR-10 images, evaluated on 128 test images
    report = run_training("tiny", output_dir="runs/tiny", figures=False)
    report["eval_examples"], report["top1_accuracy"], report["flops_ratio"]  # e.g. 128, 0.16, 0.93
    ```
    """
    if config is None or isinstance(config, str):
        config = resolve_config(config or "cpu", **overrides)
    elif overrides:
        config = update_config(config, **overrides)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, a preset name or None. Received: {config!r}")
    wall_start = time.perf_counter()
    if config.deterministic:  # for the rest of the process: TF has no public switch back
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    previous_policy = keras.mixed_precision.dtype_policy()
    _set_policy(config.mixed_precision)
    try:
        return _run(config, wall_start)
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)


def _run(config, wall_start, strategy=None, twin=None):
    """One training run; `twin`: the summary of an already trained static twin (else trained here)."""
    keras.utils.set_random_seed(config.seed)
    strategy = strategy or make_strategy(config.strategy, config.tpu, config.peer_timeout)
    # Every save and load of the run, backups included. After the strategy: the skip sets are
    # built from Keras objects with variables, and a multi-worker strategy must come first.
    cache_saving_skipsets()
    chief = is_chief(strategy)
    output_dir = config.output_dir
    if not chief:
        output_dir = os.path.join(config.output_dir, "workers", str(worker_index()))
    os.makedirs(output_dir, exist_ok=True)
    flags = config.to_dict()
    flags["num_replicas"] = strategy.num_replicas_in_sync
    flags["scaled_learning_rate"] = scaled_learning_rate(config)
    if chief:
        with open(os.path.join(output_dir, CONFIG_FILE), "w") as f:
            json.dump(flags, f, indent=2)

    info = get_dataset_info(config.dataset)
    with_categories = bool(config.category_supervision)
    train = load_dataset(
        config.dataset, info.train_split, batch_size=config.batch_size, training=True,
        image_size=config.image_size, max_examples=config.max_train_examples,
        with_categories=with_categories, seed=config.seed, data_dir=config.data_dir,
    )
    if config.strategy == "multi_worker":
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train = train.with_options(options)
    steps_per_epoch = _steps(train)
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the {config.max_train_examples or 'whole'} "
            "training examples: no full batch"
        )
    size = config.image_size or info.image_size
    if config.early_exits and config.teacher_epochs:  # the exit names, before the twin trains
        exit_model(config, build_model(config, info.num_classes, (size, size, 3)))
    exits_target = exits_beside_target(config, info.num_classes, (size, size, 3)) if (
        config.compare_exits) else None
    if twin is None and config.teacher_epochs:
        twin = train_static_twin(config, strategy)
    # Before the DMNN, like its twin: a rerun after an interruption finds it done.
    exits_beside = train_exits_beside(config, twin, strategy, exits_target) if (
        config.compare_exits) else None
    if twin:  # the same model whether the twin was trained now or found from an earlier run
        keras.utils.set_random_seed(config.seed)
    init_from = twin["model_path"] if twin else config.init_from
    teacher_path = config.teacher or (twin["model_path"] if twin else None)
    with strategy.scope():
        num_categories = info.num_categories if with_categories else 0
        replaced = None
        if config.early_exits and init_from:
            from dmnn_keras.warm_start import start_exits_from

            init_model = load_model_or_preset(init_from, "init_from")
            model, replaced = start_exits_from(init_model, tuple(config.early_exits),
                                               info.num_classes, (size, size, 3),
                                               config.exit_loss_weight)
            if config.verbose and chief:
                heads = [name for name in model.exit_names if name not in replaced
                         and name in getattr(init_model, "exit_names", ())]
                print_init_from(init_from, replaced, ", ".join(["backbone"] + heads) if heads
                                else "backbone; the exit heads start fresh")
        elif config.early_exits:
            model = exit_model(config, build_model(config, info.num_classes, (size, size, 3)))
        elif init_from:
            from dmnn_keras.warm_start import start_from

            # forced_gate_rate is the run's own: a DMNN pre-trained all-on learns its gates.
            kwargs = dict(seed=config.seed, num_categories=num_categories,
                          forced_gate_rate=config.forced_gate_rate, **resource_loss_kwargs(config))
            init_model = load_model_or_preset(init_from, "init_from")
            model, replaced = start_from(
                init_model, info.num_classes, (size, size, 3),
                groups=config.groups, flops_target=config.flops_target, calibration_images=train,
                calibration_batches=REBALANCE_BATCHES,
                split="cross" if config.block_split == "cross" else "partition",
                **({"switchable_norms": True} if config.switchable_norms else {}), **kwargs,
            )
            if config.verbose and chief:
                print_init_from(init_from, replaced, "backbone; the gate controllers start fresh"
                                if init_model.get_config().get("gating") is None
                                else "backbone, gates, controllers")
        else:
            model = build_model(config, info.num_classes, (size, size, 3), num_categories)
        if config.gate_logit_bound:
            bound_gate_logits(model, config.gate_logit_bound)
        if config.gate_information_weight:
            reward_gate_information(model, config.gate_information_weight)
        if teacher_path:
            try:
                model.distill_from(load_model_or_preset(teacher_path, "teacher"),
                                   config.distill_weight, config.distill_temperature)
            except ModelFileError:
                raise
            except ValueError as error:  # e.g. another class count: the recipe's one-line error
                raise ModelFileError(f"{error} (teacher={teacher_path!r})") from None
        elif config.inplace_distill_weight:
            model.distill_in_place(config.inplace_distill_weight, config.distill_temperature)
        if config.weight_decay and config.weight_decay_mode == "l2":
            add_l2(model, config.weight_decay)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    if config.strategy == "multi_worker":
        patch_multi_worker_build(model, strategy)
    # The gate threshold is calibrated on training images without augmentation: gates decide
    # differently on padded, cropped images (the FLOPs ratio measured 0.10 lower on them than on
    # the test images). BatchNorm statistics come from the augmented batches training used (on
    # clean images they cost 3.0 and 3.6 points: benchmarks/calibration_sensitivity.py).
    clean = None
    if config.calibrate_flops_batches or config.target_correction_batches:
        clean = load_dataset(
            config.dataset, info.train_split, batch_size=config.batch_size, training=False,
            image_size=config.image_size, max_examples=config.max_train_examples,
            data_dir=config.data_dir,
        )
    multi_worker = config.strategy == "multi_worker"
    gate_images = None
    if chief and model.gated_blocks:
        gate_images = eval_dataset(
            config.dataset, None, EVAL_BATCH_SIZE,
            min(GATE_LOG_IMAGES, config.max_eval_examples or GATE_LOG_IMAGES), config.data_dir,
            config.image_size,
        )
    # Multi-worker: the workers stop together and check each other's backups on resume.
    peers = Peers(strategy, config.output_dir, config.peer_timeout) if multi_worker else None
    schedules = gate_schedule_callbacks(config, clean)
    callbacks, timer = callbacks_lib.make_callbacks(
        output_dir, steps_per_epoch, config.backup_every_steps, write_logs=chief,
        gate_images=gate_images, peers=peers, restart=config.restart, extra=schedules,
    )
    backup = callbacks[0]
    # First in the list: they run at the end of training before BackupAndRestore deletes the
    # backup, so an interruption during them resumes at the end and calibrates again.
    calibration = None
    if config.calibrate_flops_batches:
        # A DMNN's includes the BatchNorm recalibration; an early-exit model's sets its
        # confidence threshold only.
        calibration = FlopsCalibration(clean, config.calibrate_flops_batches,
                                       **(dict(target=config.flops_target) if config.early_exits
                                          else dict(bn_images=train)))
        callbacks.insert(0, calibration)
    elif config.recalibrate_batches:
        callbacks.insert(0, BatchNormRecalibration(train, config.recalibrate_batches))
    fixing = None
    if config.fix_constant_gates:  # after the calibration: at the calibrated thresholds
        fixing = ConstantGateFixing(clean, config.calibrate_flops_batches, config.batch_size)
        callbacks.insert(1, fixing)
    train_start = time.perf_counter()
    with callbacks_lib.stop_on_signals(backup):
        history = model.fit(train, epochs=config.epochs, callbacks=callbacks,
                            verbose=config.verbose, shuffle=False)  # the pipeline shuffles
    train_seconds = time.perf_counter() - train_start
    model.distill_from(None)
    model.save(os.path.join(output_dir, MODEL_FILE))
    training = {
        "train_seconds": train_seconds,
        "epoch_seconds": timer.seconds,
        "epochs_run": [e + 1 for e in timer.epochs],
        "steps_per_epoch": steps_per_epoch,
        "train_images": steps_per_epoch * config.batch_size * config.epochs,
        "final_train_metrics": {k: float(v[-1]) for k, v in history.history.items() if v},
    }
    if replaced is not None:
        training["init_from_replaced"] = replaced
    if calibration is not None and calibration.result is not None:
        training["flops_calibration"] = calibration.result
    if fixing is not None and fixing.fixed is not None:
        training["fixed_gates"] = {block: list(values) for block, values in fixing.fixed.items()}
    corrections = [c for s in schedules for c in getattr(s, "corrections", [])]
    if corrections:  # (epoch, training FLOPs ratio, inference ratio on clean images,
        # next target, gate-threshold shift)
        training["target_corrections"] = [[int(e)] + [float(v) for v in values]
                                          for e, *values in corrections]
    if exits_beside:
        training["exits_beside"] = exits_beside
    if twin:
        training["static_twin"] = twin
        training["total_train_images"] = training["train_images"] + twin["train_images"]
        training["total_train_seconds"] = train_seconds + twin["train_seconds"]
    if not chief:
        return dict(training, flags=flags, chief=False)
    report = evaluate_and_report(
        model, flags, config.dataset, info.eval_split, output_dir,
        max_examples=config.max_eval_examples, data_dir=config.data_dir, figures=config.figures,
        image_size=config.image_size, verbose=bool(config.verbose),
        **training,
    )
    started_from = None if twin else static_start(config, model, replaced, (size, size, 3))
    if started_from:
        report["started_from"] = started_from
    reference = twin or started_from
    if reference and config.latency_images:
        report["latency_vs_twin"] = latency_vs_twin(
            model, reference["model_path"], config, "twin" if twin else "init_from")
    report["wall_time_seconds"] = time.perf_counter() - wall_start
    report_lib.write_report(report, output_dir)
    return report


def static_start(config, model, replaced, input_shape):
    """The static model a dynamic `model` was warm-started from (`init_from`, trained elsewhere).

    What a user would otherwise keep, evaluated on the run's eval images:
    `{model_path, model, top1_accuracy, flops}`. None when there is nothing
    to compare with: a static `model`, no `init_from`, a twin trained by the
    run (`static_twin` instead), a gated or early-exit `init_from`, or one
    that classifies other classes (`replaced`) or other image sizes.
    """
    dynamic = bool(getattr(model, "gated_blocks", None)) or bool(config.early_exits)
    if not (dynamic and config.init_from) or config.teacher_epochs or replaced:
        return None
    from dmnn_keras.models.early_exit import EarlyExitModel

    # Loaded from its file again: the model the user would keep, whatever the run did to its copy.
    static = load_model_or_preset(config.init_from, "init_from")
    if (isinstance(static, EarlyExitModel) or static.get_config().get("gating") is not None
            or tuple(static.input_shape[1:]) != tuple(input_shape)):
        return None
    evaluation = evaluate_model(static, config.dataset, None, EVAL_BATCH_SIZE,
                                config.max_eval_examples, config.data_dir, config.image_size)
    return {"model_path": config.init_from, "model": static.name,
            "top1_accuracy": evaluation["accuracy"], "flops": int(evaluation["profile"]["flops"])}


def latency_vs_twin(model, twin_path, config, twin_name="twin"):
    """TFLite batch-1 latency (1 thread, learned gates) of `model` and the twin on test images.

    `twin_name` names the twin in the error when its file is gone: `twin`
    (trained by the run) or `init_from` (trained elsewhere).
    """
    from dmnn_keras.export.latency import compare_latency

    info = get_dataset_info(config.dataset)
    data = load_dataset(config.dataset, info.eval_split, batch_size=config.latency_images,
                        training=False, max_examples=config.latency_images,
                        image_size=config.image_size, data_dir=config.data_dir)
    images = next(data.as_numpy_iterator())[0]
    twin, dynamic = compare_latency([load_model_or_preset(twin_path, twin_name), model], images)
    return {"images": int(len(images)), "threads": 1, "twin_median_ms": twin["median_ms"],
            "median_ms": dynamic["median_ms"], "twin_mean_ms": twin["mean_ms"],
            "mean_ms": dynamic["mean_ms"],
            "median_ratio": dynamic["median_ms"] / twin["median_ms"],
            "mean_ratio": dynamic["mean_ms"] / twin["mean_ms"]}
