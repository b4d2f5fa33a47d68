"""The resource loss over all gates of a network, and its metrics."""

import math

import keras
from keras import ops

from dmnn_keras.flops import executed_flops, full_flops, rate_for_flops
from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments


RATE_LOSSES = ("block", "gate", "bounded")
GATE_RATE_BOUNDS = (0.1, 0.9)  # rate_loss="bounded": every gate's batch rate kept inside


@keras.saving.register_keras_serializable(package="dmnn_keras")
class ResourceLoss(keras.layers.Layer):
    """Adds the DMNN resource loss and tracks `flops_ratio` and `execution_rate`.

    Sits on the main path (it returns its first input unchanged) so that it
    sees the gates of every block in one place. With `t = flops_target`:

        rate_l  = mean over batch and sub-blocks of block l's gates
        ratio   = batch mean of executed_flops(image) / full_flops
        loss    = loss_weight * (mean_l (rate_l - r)^2 + (ratio - t)^2)

    `r = clip((t * full_flops - always_on_flops) / gateable_flops, 0, 1)` is
    the execution rate that gives the FLOPs ratio t when every block runs the
    same share. The paper writes `t` for both; the two differ when the
    always-on part is large (31% of the small CIFAR ResNet: stem, shortcuts,
    head), and then the two terms pull apart and the ratio lands between.

    `rate_loss="gate"` replaces `rate_l` by the batch rate of every single
    gate (sub-block): each sub-block is then asked to run for a share r of
    the images instead of letting a block keep some sub-blocks always on and
    the others always off (a pruned static network: measured 7 of 8 gates
    constant with "block"). Deterministic inference gates can only meet it by
    depending on the image.

    `rate_loss="bounded"` keeps the per-block rates of "block" and adds, per
    gate g with batch rate `rate_g`, the hinge
    `mean_g (relu(low - rate_g)^2 + relu(rate_g - high)^2)` with
    `(low, high) = gate_rate_bounds` (0.1, 0.9): no sub-block may run for all
    images or for none, but a block may still keep one sub-block on far more
    often than another (softer than "gate", which asks every sub-block for
    exactly r).

    `executed_flops(image) = always_on_flops + sum_l sum_j gate_lj * path_flops[l][j]
    + sum_l sum_(i, j, f) in pair_flops[l] f * gate_li * gate_lj`.
    The pair terms are for gates whose FLOPs are not linear (channel gating: a
    convolution between two gated channel groups costs `f` only when both are
    on); without them (DMNN, AIG) the formula is linear in the gates.
    The metrics `flops_ratio` and `execution_rate` (mean of rate_l) appear in
    `model.fit` logs.

    Hitting the target (`dual_step > 0`): a fixed-weight squared penalty
    settles where its pull balances the task loss's, above the target (the
    paper's loss alone gave 0.62 for t = 0.5). A Lagrange multiplier `mu`
    (non-trainable weight `multiplier`) adds `mu * (ratio - t)` to the loss
    and rises by `dual_step * (ratio - t)` after every training step (dual
    ascent), so it grows while the constraint is violated and the ratio
    settles on `t` on average, whatever the task loss's pull.

    The current target is the non-trainable weight `target` (starts at
    `flops_target`; `dmnn_keras.training.FlopsTargetSchedule` anneals it).

    Per-image targets (`uncertainty_spread = s > 0`): the terms above only
    fix the batch mean, and the gates settled on one cost for every image
    (5-6 distinct costs, most gates constant: BENCHMARKS.md,
    cifar10_pareto). This adds `mean_i (ratio_i - t_i)^2` with
    `t_i = clip(t + s * (u_i - mean_j u_j), min_ratio, 1)`: image i's own
    FLOPs ratio is pulled toward a target raised by its uncertainty
    `u_i = entropy(softmax(logits_i)) / log(classes)` (in [0, 1], no
    gradient), so images the network is unsure of get more sub-blocks and
    confident ones fewer, with the batch mean still at t. `min_ratio` is the
    always-on share. The first input must then be the logits; with
    `uncertainty_from_input=True` the second input is, instead, the logits
    whose uncertainty `u_i` is read (a difficulty head's, which the
    controllers also read: see `GatingConfig.difficulty_head`).

    Args:
        flops_target: float in (0, 1].
        path_flops: list over gated blocks of lists of per-sub-block MACs.
        always_on_flops: MACs that run for every image (stem, shortcuts,
            controllers, head, ungated blocks).
        loss_weight: lambda, the weight of the whole resource loss.
        pair_flops: None, or a list over gated blocks of lists of
            `[i, j, MACs]` triples (gate indices within the block's gates).
        dual_step: float >= 0, the step of the multiplier per training step
            (0: the paper's penalty only).
        rate_loss: "block" (the paper's per-block rates), "gate" (per gate) or
            "bounded" (per block, and every gate's rate inside `gate_rate_bounds`).
        gate_rate_bounds: `(low, high)`, 0 <= low < high <= 1, for "bounded".
        uncertainty_spread: float >= 0, `s` of the per-image targets (0: none).
        uncertainty_from_input: whether the call's second input holds the
            logits of the per-image targets (needs `uncertainty_spread > 0`).

    Subclasses change only the loss (`resource_loss`): they share the FLOPs
    accounting, the metrics and the place on the main path.

    Under a mixed dtype policy `outputs` passes through in the compute dtype,
    while the gates are read as float32 and the loss, the metrics and the
    weights `target` and `multiplier` are float32.

    Call args:
        inputs: `[outputs, gates_1, ..., gates_L]`, gates_l `[batch, groups_l]`;
            `[outputs, uncertainty_logits, gates_1, ...]` with
            `uncertainty_from_input`.

    Returns:
        `outputs`, unchanged.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import ResourceLoss
    layer = ResourceLoss(flops_target=0.5, path_flops=[[100, 100]], always_on_flops=200)
    logits, gates = np.zeros((2, 10), "float32"), np.ones((2, 2), "float32")
    layer([logits, gates]).shape  # (2, 10)
    # all gates on: rate 1 where r = 0 suffices (the always-on half alone is 0.5), ratio 1:
    # (1 - 0)^2 + (1 - 0.5)^2
    float(layer.losses[0])  # 1.25
    ```
    """

    def __init__(self, flops_target, path_flops, always_on_flops, loss_weight=1.0,
                 pair_flops=None, dual_step=0.0, rate_loss="block",
                 gate_rate_bounds=GATE_RATE_BOUNDS, uncertainty_spread=0.0,
                 uncertainty_from_input=False, **kwargs):
        check_keyword_arguments(self, ResourceLoss, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        check_flops_target(flops_target)
        if rate_loss not in RATE_LOSSES:
            raise ValueError(
                f"rate_loss must be one of {RATE_LOSSES}. Received: rate_loss={rate_loss!r}"
            )
        self.rate_loss = rate_loss
        try:
            low, high = (float(b) for b in gate_rate_bounds)
        except (TypeError, ValueError):
            low = high = None
        if low is None or not 0.0 <= low < high <= 1.0:
            raise ValueError("gate_rate_bounds must be (low, high) with 0 <= low < high <= 1. "
                             f"Received: gate_rate_bounds={gate_rate_bounds!r}")
        self.gate_rate_bounds = (low, high)
        if not isinstance(dual_step, (int, float)) or dual_step < 0:
            raise ValueError(f"dual_step must be a number >= 0. Received: dual_step={dual_step!r}")
        self.dual_step = float(dual_step)
        if isinstance(uncertainty_spread, bool) or not isinstance(
                uncertainty_spread, (int, float)) or not uncertainty_spread >= 0:
            raise ValueError("uncertainty_spread must be a number >= 0. Received: "
                             f"uncertainty_spread={uncertainty_spread!r}")
        self.uncertainty_spread = float(uncertainty_spread)
        if uncertainty_from_input not in (True, False) or (
                uncertainty_from_input and not self.uncertainty_spread):
            raise ValueError("uncertainty_from_input must be True (with uncertainty_spread > 0) "
                             f"or False. Received: uncertainty_from_input={uncertainty_from_input!r}"
                             f" with uncertainty_spread={uncertainty_spread!r}")
        self.uncertainty_from_input = bool(uncertainty_from_input)
        self.flops_target = float(flops_target)
        self.path_flops = [[float(f) for f in block] for block in path_flops]
        self.always_on_flops = float(always_on_flops)
        self.loss_weight = float(loss_weight)
        if pair_flops is not None and len(pair_flops) != len(self.path_flops):
            raise ValueError(
                "pair_flops must have one entry per gated block "
                f"({len(self.path_flops)}). Received: {len(pair_flops)} entries"
            )
        self.pair_flops = None if pair_flops is None else [
            [[int(i), int(j), float(f)] for i, j, f in block] for block in pair_flops
        ]
        # The network's FLOPs table, as `dmnn_keras.flops` reads it.
        self.flops_table = {"always_on": self.always_on_flops, "blocks": [
            {"paths": paths, "pairs": self.pair_flops[i] if self.pair_flops else []}
            for i, paths in enumerate(self.path_flops)
        ]}
        self.full_flops = full_flops(self.flops_table)
        self.gateable_flops = self.full_flops - self.always_on_flops
        self.flops_ratio_tracker = keras.metrics.Mean(name="flops_ratio")
        self.execution_rate_tracker = keras.metrics.Mean(name="execution_rate")
        # Set by `dmnn_keras.gates.all_gates_on`: the layer passes `outputs` through, adds no
        # loss and moves neither its multiplier nor its trackers (read when a call is traced).
        self.suspended = False

    def build(self, input_shape):
        position = 1 if self.uncertainty_from_input else 0
        if self.uncertainty_spread and len(input_shape[position]) != 2:
            raise ValueError(
                f"uncertainty_spread > 0 needs logits [batch, classes] as input {position}. "
                f"Received: an input {position} of shape {tuple(input_shape[position])}"
            )
        self.target = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.flops_target),
            trainable=False, dtype="float32", autocast=False, name="target",
        )
        self.multiplier = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="float32", autocast=False,
            aggregation="mean", name="multiplier",
        )
        self.built = True

    def executed_flops(self, gates_list):
        """Executed MACs per image `[batch]` from the gates of every block."""
        return executed_flops(self.flops_table, gates_list)

    def rate_target(self):
        """The execution rate r that gives the current target FLOPs ratio (a scalar tensor).

        Blocks with pairs of gates (channel and cross-split blocks) take the
        rate whose independent gates meet it (`rate_for_flops`).
        """
        t = ops.convert_to_tensor(self.target)
        return ops.clip(rate_for_flops(self.flops_table, t * self.full_flops), 0.0, 1.0)

    def resource_loss(self, executed, rates):
        """The loss (before `loss_weight`) from per-image executed MACs `[batch]`
        and execution rates (per block `[L]`, or per gate with `rate_loss="gate"`):
        `mean (rates - r)^2 + (flops_ratio - t)^2`."""
        ratio = ops.mean(executed) / self.full_flops
        t = ops.convert_to_tensor(self.target)
        return ops.mean(ops.square(rates - self.rate_target())) + ops.square(ratio - t)

    def image_targets_loss(self, executed, logits):
        """`mean_i (ratio_i - t_i)^2`, the per-image targets raised by uncertainty (see above).

        Args:
            executed: executed MACs per image `[batch]`.
            logits: `[batch, classes]`; only their softmax entropy is read (no gradient).
        """
        uncertainty = prediction_uncertainty(ops.stop_gradient(logits))
        t = ops.convert_to_tensor(self.target)
        targets = ops.clip(t + self.uncertainty_spread * (uncertainty - ops.mean(uncertainty)),
                           self.always_on_flops / self.full_flops, 1.0)
        return ops.mean(ops.square(executed / self.full_flops - targets))

    def bounds_loss(self, gate_rates):
        """`mean_g (relu(low - rate_g)^2 + relu(rate_g - high)^2)` over gate rates `[G]`."""
        low, high = self.gate_rate_bounds
        return ops.mean(ops.square(ops.relu(low - gate_rates)) + ops.square(
            ops.relu(gate_rates - high)))

    def call(self, inputs, training=None):
        outputs, gates_list = inputs[0], list(inputs[1:])
        uncertainty_logits = gates_list.pop(0) if self.uncertainty_from_input else outputs
        if not gates_list or self.suspended:
            return outputs
        executed = self.executed_flops(gates_list)
        ratio = ops.mean(executed) / self.full_flops
        rates = ops.stack([ops.mean(ops.cast(g, "float32")) for g in gates_list])
        gate_rates = None if self.rate_loss == "block" else ops.concatenate(
            [ops.mean(ops.cast(g, "float32"), axis=0) for g in gates_list])
        loss_rates = gate_rates if self.rate_loss == "gate" else rates
        loss = self.loss_weight * self.resource_loss(executed, loss_rates)
        if self.rate_loss == "bounded":
            loss = loss + self.loss_weight * self.bounds_loss(gate_rates)
        if self.uncertainty_spread:
            loss = loss + self.loss_weight * self.image_targets_loss(executed, uncertainty_logits)
        if self.dual_step:
            violation = ratio - ops.convert_to_tensor(self.target)
            loss = loss + ops.stop_gradient(ops.convert_to_tensor(self.multiplier)) * violation
            if training:
                self.multiplier.assign_add(self.dual_step * ops.stop_gradient(violation))
        self.add_loss(loss)
        self.flops_ratio_tracker.update_state(ratio)
        self.execution_rate_tracker.update_state(ops.mean(rates))
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            flops_target=self.flops_target, path_flops=self.path_flops,
            always_on_flops=self.always_on_flops, loss_weight=self.loss_weight,
            pair_flops=self.pair_flops, dual_step=self.dual_step, rate_loss=self.rate_loss,
            gate_rate_bounds=list(self.gate_rate_bounds),
            uncertainty_spread=self.uncertainty_spread,
            uncertainty_from_input=self.uncertainty_from_input,
        )
        return config


def prediction_uncertainty(logits):
    """`entropy(softmax(logits)) / log(classes)` per image: `[batch, classes]` -> `[batch]` in [0, 1]."""
    logits = ops.cast(logits, "float32")
    log_p = ops.log_softmax(logits, axis=-1)
    return -ops.sum(ops.exp(log_p) * log_p, axis=-1) / math.log(logits.shape[-1])


def check_flops_target(flops_target):
    """Raises ValueError unless 0 < flops_target <= 1."""
    if not isinstance(flops_target, (int, float)) or not 0.0 < flops_target <= 1.0:
        raise ValueError(
            f"flops_target must be a number in (0, 1]. Received: flops_target={flops_target!r}"
        )
