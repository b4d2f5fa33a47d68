"""Training configurations: the `TrainConfig` fields and the named presets.

A preset is a dict of `TrainConfig` fields; `resolve_config(preset, **overrides)`
applies overrides that are not None on top of it and validates the result.

Learning rate: `learning_rate` is the rate for a global batch of 256; the
optimizer uses `learning_rate * batch_size / 256` (linear scaling), whatever
the strategy splits the global batch into.

Weight decay: `weight_decay_mode="l2"` (default) adds `weight_decay / 2 *
||w||^2` for every convolution and dense kernel (BatchNorm and biases
excluded) to the loss, so the gradient gets `+ weight_decay * w` before
momentum: exactly PyTorch's `SGD(weight_decay=...)` that the papers used.
`"decoupled"` uses the Keras optimizer's `weight_decay` argument instead
(`w -= lr * weight_decay * w` after the update, outside momentum; with
momentum 0.9 that is about 10x weaker than coupled L2 at the same value).

Presets:
  * `imagenet`: the DMNN paper's ImageNet recipe. Nesterov SGD momentum 0.9,
    global batch 256, lr 0.1 x batch/256, cosine decay, 120 epochs, weight
    decay 1e-4 (ResNet) or 4e-5 (MobileNet), random-resized crop 224 + flip.
  * `cifar10`, `cifar100`: SGD momentum 0.9, weight decay 1e-4, batch 256,
    lr 0.1 divided by 10 at epochs 100 and 150 of 200, pad-4 crop + flip,
    DMNN-ResNet-50 (CIFAR stem).
  * `cpu` (the default, `python recipes/train.py` = the main job): the
    dynamic-network recipe on the small CIFAR ResNet (stack (1,1,1,1), width
    0.25). First its static twin (`resnet`) trains 5 epochs on the 50,000
    CIFAR-10 training images (lr 0.2 x 128/256 cosine, 0.5-epoch warmup,
    coupled L2 5e-4); then the DMNN (`dmnn_resnet`, 2 sub-blocks per block
    partitioning the twin's, `from_static`) is warm-started from it and trained
    3 epochs (lr 0.1 x 128/256) with distillation from it and a difficulty
    head after stage 2 (`difficulty_head`: a classifier trained on the labels,
    whose uncertainty the controllers of stages 3 and 4 read and which spreads
    the per-image FLOPs targets, `uncertainty_spread` 6; +0.5 point on this
    job over 2 seeds, README; ResNet DMNNs only, `FAMILY_PRESETS`), the FLOPs target
    annealed from 1.0 to 0.71 over the first epoch (0.71 of the DMNN's own MACs,
    0.6 of the twin's: the share where the benchmark's DMNN stopped losing to
    the static net of equal MACs, `benchmarks/cifar10_pareto.py`) with per-block rates (`rate_loss="block"`) and a Lagrange
    multiplier (`dual_step` 0.5, so that the training FLOPs ratio follows the
    target), after the annealing the training target corrected each epoch so
    that training runs the FLOPs ratio inference will
    (`target_correction_batches` 10), no gate noise in the last epoch,
    then the gate thresholds shifted to meet the target on clean images and
    BatchNorm recalibrated on 20 augmented training batches
    (`calibrate_flops`), and the gates that none of those 20 clean batches
    switches fixed (`fix_constant_gates`: TFLite runs them without `IF`);
    both are evaluated on the 10,000
    test images and their TFLite latency compared on 200 of them. Beside it,
    the twin is fine-tuned as the `cpu_exits` early-exit network at the
    DMNN's share of the twin's MACs (`compare_exits`), so the run reports
    both dynamic networks against the twin. What the
    recipe and the choice of its values measured is in the README
    ("Training", "Results") and BENCHMARKS.md, with the commands that gave it.
    The epochs (5 for the twin, 3 for each dynamic network) fit the job in
    9 minutes on 2 AMD EPYC cores, 19-31 on the Xeon of earlier sessions (the
    issue asks about 15); 6 and 4 took 20 there.
  * `cpu_exits`: the main job's budget for an early-exit network
    (`EarlyExitModel`): the same twin (5 epochs), then exits after stages 2
    and 3 (`early_exits`), fine-tuned 3 epochs with the whole network and
    distilled from the twin, the confidence threshold set after training so
    that the MACs are 0.6 of the network's (`calibrate_flops`, 20 clean
    training batches).
  * `cpu_scratch`: the DMNN recipe before warm start (paper split, 4 sub-blocks,
    from scratch, fixed-weight resource loss): 25,000 images, 4 epochs, lr 0.2.
  * `cpu_static`: `cpu_scratch` with the static twin (`resnet`).
  * `tiny`: one epoch over 256 images, for tests and smoke runs.
"""

import dataclasses
import os
from typing import Optional, Union

from dmnn_keras.layers.gumbel_gate import check_information_weight
from dmnn_keras.training.registry import FAMILY_STAGES, MODELS, get_model_entry

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
SCHEDULES = ("cosine", "step", "constant")
OPTIMIZERS = ("sgd", "nesterov")
WEIGHT_DECAY_MODES = ("l2", "decoupled")
MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")
FAMILY_WEIGHT_DECAY = {"resnet": 1e-4, "mobilenet": 4e-5}
BASE_BATCH_SIZE = 256
DEFAULT_PRESET = "cpu"
PEER_TIMEOUT = 300.0  # seconds a multi-worker run waits for another worker (--peer_timeout)
# The gate schedules and calibrations: unset for static models (and for a DMNN's twin).
GATE_FIELDS = ("forced_gate_rate", "uncertainty_spread", "difficulty_head", "gate_logit_bound",
               "gate_information_weight",
               "target_schedule_epochs", "target_correction_batches", "correction_shifts_gates",
               "noise_off_epochs", "start_temperature", "end_temperature", "recalibrate_batches",
               "calibrate_flops_batches", "fix_constant_gates")


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a training run (see the module docstring).

    `None` means "the builder's or family's default" for `resource_loss_weight`,
    `stack_sizes`, `width_multiplier` and `weight_decay`; `output_dir=None`
    means `runs/<config>`.
    """

    config: str = DEFAULT_PRESET
    model: str = "dmnn_resnet"
    dataset: str = "cifar10"
    groups: Union[int, tuple] = 4  # one int per stage allowed
    flops_target: float = 0.5
    resource_loss_weight: Optional[float] = None
    category_supervision: bool = False
    width_multiplier: Optional[float] = None
    stack_sizes: Optional[tuple] = None
    image_size: Optional[int] = None
    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: Optional[float] = None
    weight_decay_mode: str = "l2"
    schedule: str = "cosine"
    decay_epochs: tuple = ()
    warmup_epochs: float = 0.0
    max_train_examples: Optional[int] = None
    max_eval_examples: Optional[int] = None
    output_dir: Optional[str] = None
    strategy: str = "default"
    tpu: str = ""
    mixed_precision: str = "none"
    seed: int = 0
    # TF op determinism, process-wide: CPU runs repeat bit for bit without it (GPUs may not).
    deterministic: bool = False
    data_dir: Optional[str] = None
    figures: bool = True
    verbose: int = 1
    backup_every_steps: int = 0  # back up every N steps too (0: at each epoch's end only)
    restart: bool = False  # discard the backup of an interrupted run and train from the start
    peer_timeout: float = PEER_TIMEOUT  # multi_worker: seconds to wait for another worker
    # === Dynamic-network recipe (DMNN models; see dmnn_keras.training.run) ===
    block_split: str = "preserve"  # DMNN ResNets' `split`
    switchable_norms: bool = False  # block_split="cross": a BatchNorm per set of sub-blocks
    dual_step: Optional[float] = None
    rate_loss: Optional[str] = None  # "block" / "gate" / "bounded" (DMNN; None: the builder's)
    # Per-image FLOPs targets raised by the image's own uncertainty (DMNN; None: the builder's, 0).
    uncertainty_spread: Optional[float] = None
    # A classifier head after this block whose uncertainty the later controllers read (DMNN).
    difficulty_head: Optional[str] = None
    gate_logit_bound: Optional[float] = None  # training penalty on |gate logits| above it
    # Training reward for gates whose decisions depend on the image (their mutual information
    # with it over the batch, `GumbelGate(information_weight=...)`); 0: none.
    gate_information_weight: float = 0.0
    # Train with this share of sub-blocks on for every image (1.0: the all-on network, the
    # pre-training of a partition DMNN before it learns its gates from init_from).
    forced_gate_rate: Optional[float] = None
    teacher_epochs: int = 0
    teacher_learning_rate: Optional[float] = None  # the twin's (None: learning_rate)
    init_from: Optional[str] = None
    teacher: Optional[str] = None
    distill_weight: float = 1.0
    distill_temperature: float = 4.0
    # In-place distillation (DMNN): the full network (every gate on) is trained on the labels
    # each step and taught to the gated network with this weight (0: off; no teacher with it).
    inplace_distill_weight: float = 0.0
    target_schedule_epochs: float = 0.0
    target_correction_batches: int = 0  # after the annealing: train at the inference ratio
    correction_shifts_gates: bool = False  # ... and shift the gate thresholds to the target
    start_temperature: Optional[float] = None
    end_temperature: Optional[float] = None
    noise_off_epochs: int = 0
    recalibrate_batches: int = 0
    calibrate_flops_batches: int = 0  # threshold shift meeting the target + BN recalibration
    # ... then the gates that none of those batches switches fixed (constants at export)
    fix_constant_gates: bool = False
    latency_images: int = 0  # TFLite latency vs the twin (teacher_epochs or a static init_from)
    early_exits: tuple = ()  # static model: exits after these blocks (EarlyExitModel)
    exit_loss_weight: float = 1.0  # each exit's loss against the final classifier's 1
    # DMNN with teacher_epochs: also fine-tune the twin with exits after these blocks (its
    # `early_exits`), at the DMNN's share of the twin's MACs, and report it beside the DMNN.
    compare_exits: tuple = ()

    def to_dict(self):
        return dataclasses.asdict(self)


PRESETS = {
    "imagenet": dict(
        model="dmnn_resnet50", dataset="imagenet2012", epochs=120, batch_size=256,
        learning_rate=0.1, optimizer="nesterov", momentum=0.9, schedule="cosine",
    ),
    "cifar10": dict(
        model="dmnn_resnet50", dataset="cifar10", epochs=200, batch_size=256,
        learning_rate=0.1, optimizer="sgd", momentum=0.9, weight_decay=1e-4,
        schedule="step", decay_epochs=(100, 150),
    ),
    "cifar100": dict(
        model="dmnn_resnet50", dataset="cifar100", epochs=200, batch_size=256,
        learning_rate=0.1, optimizer="sgd", momentum=0.9, weight_decay=1e-4,
        schedule="step", decay_epochs=(100, 150),
    ),
    "cpu": dict(
        model="dmnn_resnet", dataset="cifar10", groups=2, block_split="partition",
        flops_target=0.71, teacher_epochs=5, teacher_learning_rate=0.2, epochs=3,
        batch_size=128, learning_rate=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
        schedule="cosine", warmup_epochs=0.5, max_train_examples=50000,
        rate_loss="block", dual_step=0.5, target_schedule_epochs=1.0,
        target_correction_batches=10, noise_off_epochs=1, calibrate_flops_batches=20,
        fix_constant_gates=True, latency_images=200,
        compare_exits=("conv3_block1", "conv4_block1"),
    ),
    # The main job's budget for an early-exit network: the same twin, then exits after stages 2
    # and 3 fine-tuned with it and distilled from it, the threshold set to 0.6 of its MACs.
    "cpu_exits": dict(
        model="resnet", dataset="cifar10", early_exits=("conv3_block1", "conv4_block1"),
        flops_target=0.6, teacher_epochs=5, teacher_learning_rate=0.2, epochs=3,
        batch_size=128, learning_rate=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
        schedule="cosine", warmup_epochs=0.5, max_train_examples=50000,
        calibrate_flops_batches=20, latency_images=200,
    ),
    "cpu_scratch": dict(
        model="dmnn_resnet", dataset="cifar10", epochs=4, batch_size=128,
        learning_rate=0.2, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
        schedule="cosine", warmup_epochs=0.5, max_train_examples=25000, dual_step=0.0,
    ),
    "cpu_static": dict(
        model="resnet", dataset="cifar10", epochs=4, batch_size=128,
        learning_rate=0.2, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
        schedule="cosine", warmup_epochs=0.5, max_train_examples=25000,
    ),
    "tiny": dict(
        model="dmnn_resnet", dataset="cifar10", epochs=1, batch_size=32,
        learning_rate=0.1, schedule="constant", max_train_examples=256,
        max_eval_examples=128, verbose=2,
    ),
}

# Settings of a preset for one model family only (its block names): with another `model` they
# are left out unless given.
FAMILY_PRESETS = {
    "cpu": {"resnet": dict(difficulty_head="conv3_block1", uncertainty_spread=6.0)},
}


def _fail(name, value, allowed):
    raise ValueError(f"{name} must be {allowed}. Received: {name}={value!r}")


def check_config(config):
    """Raises ValueError naming the first bad field of `config`."""
    entry = get_model_entry(config.model)
    from dmnn_keras.data import get_dataset_info  # imports TFDS lazily

    get_dataset_info(config.dataset)
    if config.strategy not in STRATEGIES:
        _fail("strategy", config.strategy, f"one of {STRATEGIES}")
    if config.schedule not in SCHEDULES:
        _fail("schedule", config.schedule, f"one of {SCHEDULES}")
    if config.optimizer not in OPTIMIZERS:
        _fail("optimizer", config.optimizer, f"one of {OPTIMIZERS}")
    if config.weight_decay_mode not in WEIGHT_DECAY_MODES:
        _fail("weight_decay_mode", config.weight_decay_mode, f"one of {WEIGHT_DECAY_MODES}")
    if config.mixed_precision not in MIXED_PRECISION:
        _fail("mixed_precision", config.mixed_precision, f"one of {MIXED_PRECISION}")
    if not isinstance(config.deterministic, bool):
        _fail("deterministic", config.deterministic, "True or False")
    for name in ("epochs", "batch_size"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(name, value, "an int >= 1")
    from dmnn_keras.models.gating import check_groups

    check_groups(config.groups)
    stages = FAMILY_STAGES[entry.family]
    if isinstance(config.groups, (list, tuple)) and entry.multi_path and len(config.groups) != stages:
        _fail("groups", tuple(config.groups),
              f"an int or {stages} ints (one per stage of model={config.model!r})")
    if isinstance(config.backup_every_steps, bool) or not isinstance(
        config.backup_every_steps, int
    ) or config.backup_every_steps < 0:
        _fail("backup_every_steps", config.backup_every_steps, "an int >= 0")
    if not isinstance(config.restart, bool):
        _fail("restart", config.restart, "True or False")
    if isinstance(config.peer_timeout, bool) or not isinstance(
        config.peer_timeout, (int, float)
    ) or not config.peer_timeout > 0:
        _fail("peer_timeout", config.peer_timeout, "a number of seconds > 0")
    if config.backup_every_steps and config.strategy == "multi_worker":
        _fail("backup_every_steps", config.backup_every_steps,
              "0 under strategy='multi_worker' (its workers back up once per epoch)")
    for name in ("max_train_examples", "max_eval_examples", "image_size"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            _fail(name, value, "None or an int >= 1")
    if not isinstance(config.flops_target, (int, float)) or not 0 < config.flops_target <= 1:
        _fail("flops_target", config.flops_target, "a number in (0, 1]")
    if not config.learning_rate > 0:
        _fail("learning_rate", config.learning_rate, "> 0")
    if config.weight_decay is not None and config.weight_decay < 0:
        _fail("weight_decay", config.weight_decay, "None or >= 0")
    if config.resource_loss_weight is not None and config.resource_loss_weight < 0:
        _fail("resource_loss_weight", config.resource_loss_weight, "None or >= 0")
    if config.width_multiplier is not None and not config.width_multiplier > 0:
        _fail("width_multiplier", config.width_multiplier, "None or > 0")
    if config.stack_sizes is not None and (
        len(config.stack_sizes) != 4 or any(int(n) < 1 for n in config.stack_sizes)
    ):
        _fail("stack_sizes", config.stack_sizes, "None or 4 ints >= 1")
    if any(not 0 < e < config.epochs for e in config.decay_epochs):
        _fail("decay_epochs", config.decay_epochs, f"epochs in (0, {config.epochs})")
    if config.warmup_epochs < 0 or config.warmup_epochs >= config.epochs:
        _fail("warmup_epochs", config.warmup_epochs, f">= 0 and < epochs={config.epochs}")
    check_dynamic_recipe(config, entry)
    return config


def check_dynamic_recipe(config, entry):
    """Validates the warm-start, distillation and gate-schedule fields."""
    from dmnn_keras.layers.multi_path_block import SPLITS
    from dmnn_keras.layers.resource_loss import RATE_LOSSES
    from dmnn_keras.methods import GatingConfig
    from dmnn_keras.presets import is_preset
    from dmnn_keras.training.model_files import trained_preset_choices

    if config.block_split not in SPLITS:
        _fail("block_split", config.block_split, f"one of {SPLITS}")
    if not isinstance(config.switchable_norms, bool):
        _fail("switchable_norms", config.switchable_norms, "True or False")
    if config.switchable_norms and config.block_split != "cross":
        raise ValueError("switchable_norms=True needs block_split='cross' (the split whose "
                         f"sub-blocks share BatchNorms). Received: block_split={config.block_split!r}")
    if config.rate_loss is not None and config.rate_loss not in RATE_LOSSES:
        _fail("rate_loss", config.rate_loss, f"None or one of {RATE_LOSSES}")
    if config.dual_step is not None and not config.dual_step >= 0:
        _fail("dual_step", config.dual_step, "None or >= 0")
    if isinstance(config.teacher_epochs, bool) or not isinstance(config.teacher_epochs, int) or (
        config.teacher_epochs < 0
    ):
        _fail("teacher_epochs", config.teacher_epochs, "an int >= 0")
    for name in ("init_from", "teacher"):
        path = getattr(config, name)
        if path is not None and not (os.path.isfile(path) or is_preset(path)):
            _fail(name, path, f"None, an existing .keras model file or {trained_preset_choices()}")
    dmnn = entry.gated and entry.multi_path
    exits = check_early_exits(config, entry)
    if (config.teacher_epochs or config.init_from) and not (dmnn or exits):
        _fail("model", config.model, "a DMNN model (dmnn_*), or a static one with early_exits, "
              "with teacher_epochs or init_from")
    if config.teacher_epochs and config.strategy == "multi_worker":
        _fail("teacher_epochs", config.teacher_epochs,
              "0 under strategy='multi_worker' (train the twin first, then pass init_from and "
              "teacher)")
    if config.teacher_epochs and config.init_from:
        _fail("init_from", config.init_from, "None when teacher_epochs > 0 (the twin it trains)")
    check_compare_exits(config, dmnn)
    if config.teacher_learning_rate is not None and not config.teacher_learning_rate > 0:
        _fail("teacher_learning_rate", config.teacher_learning_rate, "None or > 0")
    if not config.distill_weight >= 0:
        _fail("distill_weight", config.distill_weight, ">= 0")
    if not config.distill_temperature > 0:
        _fail("distill_temperature", config.distill_temperature, "> 0")
    if not config.inplace_distill_weight >= 0:
        _fail("inplace_distill_weight", config.inplace_distill_weight, ">= 0")
    if config.inplace_distill_weight and not dmnn:
        _fail("inplace_distill_weight", config.inplace_distill_weight,
              f"0 for model={config.model!r} (DMNN models only)")
    if config.inplace_distill_weight and (config.teacher or config.teacher_epochs):
        _fail("inplace_distill_weight", config.inplace_distill_weight,
              "0 with a teacher or teacher_epochs (one distillation at a time)")
    if not entry.gated:
        for name in GATE_FIELDS:
            if getattr(config, name) and not (exits and name == "calibrate_flops_batches"):
                _fail(name, getattr(config, name), f"unset for the static model={config.model!r}")
    if not 0 <= config.target_schedule_epochs <= config.epochs:
        _fail("target_schedule_epochs", config.target_schedule_epochs,
              f"in [0, epochs={config.epochs}]")
    if isinstance(config.noise_off_epochs, bool) or not isinstance(config.noise_off_epochs, int) or (
        not 0 <= config.noise_off_epochs <= config.epochs
    ):
        _fail("noise_off_epochs", config.noise_off_epochs, f"an int in [0, epochs={config.epochs}]")
    if (config.start_temperature is None) != (config.end_temperature is None):
        _fail("end_temperature", config.end_temperature,
              "given together with start_temperature (both or neither)")
    GatingConfig(forced_gate_rate=config.forced_gate_rate)  # the model's own check of it
    if config.forced_gate_rate is not None and not dmnn:
        _fail("forced_gate_rate", config.forced_gate_rate,
              f"None for model={config.model!r} (DMNN gate controllers only)")
    if config.uncertainty_spread is not None:
        GatingConfig(uncertainty_spread=config.uncertainty_spread)
        if not dmnn:
            _fail("uncertainty_spread", config.uncertainty_spread,
                  f"None for model={config.model!r} (the DMNN resource loss only)")
    if config.difficulty_head is not None:
        GatingConfig(difficulty_head=config.difficulty_head)
        if not dmnn:
            _fail("difficulty_head", config.difficulty_head,
                  f"None for model={config.model!r} (DMNN gate controllers only)")
    try:  # the gates' own check of it
        check_information_weight(config.gate_information_weight)
    except ValueError:
        _fail("gate_information_weight", config.gate_information_weight, "a number >= 0")
    for name in ("gate_logit_bound", "start_temperature", "end_temperature"):
        value = getattr(config, name)
        if value is not None and not value > 0:
            _fail(name, value, "None or > 0")
    for name in ("calibrate_flops_batches", "target_correction_batches"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail(name, value, "an int >= 0")
        if value and not dmnn and not (exits and name == "calibrate_flops_batches"):
            _fail(name, value, f"0 for model={config.model!r} (DMNN gate controllers only)")
    if not isinstance(config.correction_shifts_gates, bool):
        _fail("correction_shifts_gates", config.correction_shifts_gates, "True or False")
    if config.correction_shifts_gates and not config.target_correction_batches:
        _fail("correction_shifts_gates", config.correction_shifts_gates,
              "False when target_correction_batches is 0 (the shift is part of the correction)")
    if not isinstance(config.fix_constant_gates, bool):
        _fail("fix_constant_gates", config.fix_constant_gates, "True or False")
    if config.fix_constant_gates and not (dmnn and config.calibrate_flops_batches):
        _fail("fix_constant_gates", config.fix_constant_gates,
              "False unless a DMNN with calibrate_flops_batches >= 1 (the gates are fixed on "
              "its clean training batches)")
    if config.target_correction_batches and not config.target_schedule_epochs:
        _fail("target_correction_batches", config.target_correction_batches,
              "0 when target_schedule_epochs is 0 (the correction starts after the annealing)")
    if isinstance(config.latency_images, bool) or not isinstance(config.latency_images, int) or (
        config.latency_images < 0
    ):
        _fail("latency_images", config.latency_images, "an int >= 0")
    if isinstance(config.recalibrate_batches, bool) or not isinstance(
        config.recalibrate_batches, int
    ) or config.recalibrate_batches < 0:
        _fail("recalibrate_batches", config.recalibrate_batches, "an int >= 0")


def check_early_exits(config, entry):
    """Validates `early_exits` and `exit_loss_weight`; returns whether the run has exits."""
    exits = config.early_exits
    if isinstance(exits, str) or not isinstance(exits, (list, tuple)) or not all(
            isinstance(name, str) and name for name in exits):
        _fail("early_exits", exits, "a tuple of block names, e.g. ('conv3_block1', 'conv4_block1')")
    weight = config.exit_loss_weight
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        _fail("exit_loss_weight", weight, "a number >= 0")
    if not exits:
        return False
    if entry.gated:
        _fail("early_exits", tuple(exits), f"() for the gated model={config.model!r} (exits "
              "attach to a static network: resnet, mobilenet_v2, ...)")
    if config.category_supervision:
        _fail("category_supervision", config.category_supervision,
              "False with early_exits (category heads belong to DMNN gate controllers)")
    if not config.calibrate_flops_batches:
        _fail("calibrate_flops_batches", config.calibrate_flops_batches,
              "an int >= 1 with early_exits (the confidence threshold is set after training to "
              "meet flops_target on that many clean training batches)")
    return True


def check_compare_exits(config, dmnn):
    """Validates `compare_exits`: block names, on a DMNN run that trains its twin."""
    names = config.compare_exits
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not all(
            isinstance(name, str) and name for name in names):
        _fail("compare_exits", names, "a tuple of block names, e.g. ('conv3_block1', "
              "'conv4_block1')")
    if not names:
        return
    if not (dmnn and config.teacher_epochs):
        _fail("compare_exits", tuple(names), "() unless a DMNN model trains its twin "
              f"(teacher_epochs > 0; got model={config.model!r}, "
              f"teacher_epochs={config.teacher_epochs}): the exits go on that twin")
    if not config.calibrate_flops_batches:
        _fail("compare_exits", tuple(names), "() unless calibrate_flops_batches >= 1 (the exits' "
              "threshold is set on that many batches to the DMNN's share of the twin's MACs)")


def resolve_config(preset=DEFAULT_PRESET, **overrides):
    """A validated `TrainConfig`: the preset, then every override that is not None.

    Fills the preset's settings for the model's family (`FAMILY_PRESETS`)
    that no override gives, `weight_decay` from the model family when neither
    sets it, and `output_dir` with `runs/<preset>`.
    """
    return _resolve(preset, overrides, family_presets=True)


def update_config(config, **overrides):
    """A resolved `TrainConfig` with every override that is not None, validated again.

    The preset's family settings are not filled again: a field that `config`
    leaves None (e.g. `difficulty_head` given empty) stays None. A `model` of
    another family swaps them: the old family's values that no override gives
    are dropped, and the new family's are filled, as `resolve_config` would.
    """
    values = {**config.to_dict(), **overrides}
    old, new = (_family(model) for model in (config.model, values.get("model")))
    if old != new:
        for name, value in FAMILY_PRESETS.get(config.config, {}).get(old, {}).items():
            if overrides.get(name) is None and values.get(name) == value:
                values.pop(name)
    return _resolve(config.config, values, family_presets=old != new)


def _family(model):
    entry = MODELS.get(model)  # an unknown model: check_config names it
    return entry.family if entry is not None else None


def _resolve(preset, overrides, family_presets):
    if preset not in PRESETS:
        _fail("config", preset, f"one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"Unknown TrainConfig fields {unknown}. Allowed: {sorted(fields)}")
    values = dict(PRESETS[preset], config=preset)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if family_presets:
        model_family = _family(values.get("model", TrainConfig.model))
        family = FAMILY_PRESETS.get(preset, {}).get(model_family, {})
        values.update({k: v for k, v in family.items() if overrides.get(k) is None})
    if values.get("difficulty_head") == "":  # given empty (`--difficulty_head=`): no head
        values["difficulty_head"] = None
    if values.get("stack_sizes") is not None:
        values["stack_sizes"] = tuple(int(n) for n in values["stack_sizes"])
    values["decay_epochs"] = tuple(values.get("decay_epochs", ()))
    for name in ("early_exits", "compare_exits"):
        if isinstance(values.get(name), list):
            values[name] = tuple(values[name])
    config = TrainConfig(**values)
    check_config(config)
    if config.weight_decay is None:
        config.weight_decay = FAMILY_WEIGHT_DECAY[get_model_entry(config.model).family]
    if config.output_dir is None:
        config.output_dir = f"runs/{preset}"
    return config


def scaled_learning_rate(config):
    """`learning_rate * batch_size / 256` (linear scaling with the global batch)."""
    return config.learning_rate * config.batch_size / BASE_BATCH_SIZE
