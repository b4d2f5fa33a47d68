"""Wiring gate controllers to blocks, shared by every builder."""

import math

from dmnn_keras.layers.aig_controller import AIGController
from dmnn_keras.layers.batch_activation_loss import BatchActivationLoss
from dmnn_keras.layers.channel_gate import ChannelGate
from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock, channel_gate_groups
from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.lcnet import LCController
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.layers.resource_loss import ResourceLoss, check_flops_target
from dmnn_keras.layers.target_rate_loss import TargetRateLoss
from dmnn_keras.models.dynamic_model import flops_table

GATINGS = (None, "dmnn", "aig", "channel", "lcnet")
# Methods whose blocks are single (groups=1) blocks with their own controller.
SINGLE_PATH_GATINGS = ("aig", "channel", "lcnet")
# Methods that gate channels inside a bottleneck (ResNet only).
CHANNEL_GATINGS = ("channel", "lcnet")
DEFAULT_RESOURCE_LOSS_WEIGHT = 2.0
# Lagrange multiplier step of the resource loss (`ResourceLoss.dual_step`).
DEFAULT_DUAL_STEP = 0.01
# Execution rates of the DMNN resource loss: per block (paper) or per gate (`ResourceLoss`).
DEFAULT_RATE_LOSS = "block"


def check_gating(gating, groups, flops_target):
    """Validates the gating arguments common to every builder."""
    if gating not in GATINGS:
        raise ValueError(f"gating must be one of {GATINGS}. Received: gating={gating!r}")
    per_stage = check_groups(groups)
    if gating in SINGLE_PATH_GATINGS and any(g != 1 for g in per_stage):
        raise ValueError(
            f"gating={gating!r} gates whole blocks or their channels and needs groups=1. "
            f"Received: groups={groups}"
        )
    check_flops_target(flops_target)


def check_groups(groups):
    """Validates `groups` (an int >= 1, or a list/tuple of them) and returns it as a tuple."""
    per_stage = tuple(groups) if isinstance(groups, (list, tuple)) else (groups,)
    if not per_stage or any(
        not isinstance(g, int) or isinstance(g, bool) or g < 1 for g in per_stage
    ):
        raise ValueError(
            f"groups must be an int >= 1 or one such int per stage. Received: groups={groups!r}"
        )
    return per_stage


FIRST_OF_STAGE = "first_of_stage"


def is_ungated(ungated_blocks, name, first_of_stage):
    """Whether block `name` runs ungated: listed in `ungated_blocks`, or "first_of_stage" and first."""
    if ungated_blocks == FIRST_OF_STAGE:
        return first_of_stage
    return name in ungated_blocks


def check_ungated(ungated_blocks, block_names):
    """Validates `ungated_blocks` ("first_of_stage" or names of blocks) once the names are known."""
    if ungated_blocks == FIRST_OF_STAGE:
        return
    if isinstance(ungated_blocks, str) or not isinstance(ungated_blocks, (list, tuple)):
        raise ValueError(
            f"ungated_blocks must be {FIRST_OF_STAGE!r} or a tuple of block names. "
            f"Received: ungated_blocks={ungated_blocks!r}"
        )
    unknown = [name for name in ungated_blocks if name not in block_names]
    if unknown:
        raise ValueError(
            f"ungated_blocks names blocks the model does not have: {unknown}. "
            f"Allowed: {list(block_names)}"
        )


def stage_groups(groups, num_stages):
    """`groups` as one int per stage: an int is repeated, a sequence must have `num_stages` ints.

    Example: `stage_groups(4, 4) == (4, 4, 4, 4)`; `stage_groups((1, 1, 4, 4), 4)`.
    """
    if isinstance(groups, (list, tuple)):
        if len(groups) != num_stages:
            raise ValueError(
                f"groups must be an int or {num_stages} ints (one per stage). "
                f"Received: groups={tuple(groups)}"
            )
        return tuple(int(g) for g in groups)
    return (int(groups),) * num_stages


def carried_active(rate, groups, min_active, carry):
    """Sub-blocks a block runs at a forced `rate`, with the rounding error carried along.

    `k = round(rate * groups + carry)` (clipped to [min_active, groups]); the
    new carry is what that rounding left out. Applied block after block (error
    diffusion), blocks with one sub-block alternate on and off and the share of
    sub-blocks on stays `rate` overall (plain rounding would turn every
    one-sub-block block off at rate 0.5).

    Returns:
        `(k, new_carry)`.

    Example: `carried_active(0.5, 1, 0, 0.0) == (1, -0.5)`, then
    `carried_active(0.5, 1, 0, -0.5) == (0, 0.0)`.
    """
    want = rate * groups + carry
    active = int(min(max(math.floor(want + 0.5), 0), groups))
    active = max(active, int(min_active))
    return active, want - active


class GateWiring:
    """Builds gated blocks one after another and collects what the loss needs.

    Args:
        gating: None (static blocks), "dmnn" (`GateController` +
            `MultiPathBlock`), "aig" (`AIGController` + one-path
            `MultiPathBlock`), "channel" (`ChannelGate` + `ChannelGatedBlock`)
            or "lcnet" (`LCController` + `ChannelGatedBlock(layer_gate=True)`).
        controller_kwargs: extra `GateController` arguments (hidden_units,
            use_previous_state, temperature, forced_rate, initial_gate_bias);
            for the other methods hidden_units, temperature and forced_rate
            are used.
        num_categories: 0, or the size of every controller's category head
            (DMNN only).
        seed: None or int; controller i uses seed + i.
        dependent: "aig"/"channel": input-dependent gates (True) or one learned
            logit pair per gate shared by all inputs (False, pruning).
        stochastic_inference: "aig"/"channel"/"lcnet": keep Gumbel noise in
            inference (the original ConvNet-AIG).
        one_sided: "channel": the batch activation loss penalises only B > t.
        dtype: None (the global policy) or the dtype policy of every block,
            controller and loss layer.
    """

    def __init__(self, gating, controller_kwargs=None, num_categories=0, seed=None,
                 dependent=True, stochastic_inference=False, one_sided=False, dtype=None):
        self.gating = gating
        self.dtype = dtype
        self.controller_kwargs = dict(controller_kwargs or {})
        self.num_categories = num_categories
        self.seed = seed
        self.dependent = dependent
        self.stochastic_inference = stochastic_inference
        self.one_sided = one_sided
        self.hidden = None
        self.forced_carry = 0.0
        self.gates = []
        self.category_logits = []
        self.category_stages = []

    def block(self, x, stage, name, gate=True, **block_kwargs):
        """Applies a `MultiPathBlock` named `name` (and its controller `name_gate`).

        With `gate=False` (or no gating) the block is static: every path runs,
        no controller.
        """
        if self.gating is None or not gate:
            return MultiPathBlock(gated=False, name=name, dtype=self.dtype, **block_kwargs)(x)
        if self.gating in SINGLE_PATH_GATINGS:
            return self._single_path_block(x, name, **block_kwargs)
        block = MultiPathBlock(gated=True, name=name, dtype=self.dtype, **block_kwargs)
        has_shortcut = block.kind == "bottleneck" or (
            block_kwargs.get("strides", 1) == 1 and x.shape[-1] == block.filters
        )
        min_active = 0 if has_shortcut else 1
        kwargs = dict(self.controller_kwargs)
        kwargs["forced_rate"] = self._block_forced_rate(block.groups, min_active)
        controller = GateController(
            block.groups,
            num_categories=self.num_categories,
            min_active=min_active,
            seed=None if self.seed is None else self.seed + len(self.gates),
            name=name + "_gate",
            dtype=self.dtype,
            **kwargs,
        )
        outputs = controller(x if self.hidden is None else [x, self.hidden])
        gates, self.hidden = outputs[0], outputs[1]
        if self.num_categories:
            self.category_logits.append(outputs[2])
            self.category_stages.append(stage)
        self.gates.append(gates)
        return block([x, gates])

    def _block_forced_rate(self, groups, min_active):
        """This block's share of forced sub-blocks (None if gates are not forced), see `carried_active`."""
        rate = self.controller_kwargs.get("forced_rate")
        if rate is None:
            return None
        active, self.forced_carry = carried_active(rate, groups, min_active, self.forced_carry)
        return active / groups

    def _single_path_block(self, x, name, kind, filters, groups, path_width, strides=1,
                           expand=True):
        """AIG / channel gating / LC-Net block `name` and its controller `name_gate`."""
        common = dict(
            hidden_units=self.controller_kwargs.get("hidden_units", 16),
            temperature=self.controller_kwargs.get("temperature", 1.0),
            forced_rate=self.controller_kwargs.get("forced_rate"),
            stochastic_inference=self.stochastic_inference,
            seed=None if self.seed is None else self.seed + len(self.gates),
            name=name + "_gate",
            dtype=self.dtype,
        )
        if self.gating == "aig":
            has_shortcut = kind == "bottleneck" or (strides == 1 and x.shape[-1] == filters)
            block_kwargs = dict(kind=kind, filters=filters, groups=1, path_width=path_width,
                                strides=strides, expand=expand, name=name, dtype=self.dtype)
            if not has_shortcut:
                # Skipping a block without a shortcut would output nothing: it always runs.
                return MultiPathBlock(gated=False, **block_kwargs)(x)
            common["forced_rate"] = self._block_forced_rate(1, 0)
            controller = AIGController(1, dependent=self.dependent, **common)
            block = MultiPathBlock(gated=True, **block_kwargs)
        else:
            if kind != "bottleneck":
                raise ValueError(
                    f"gating={self.gating!r} gates the channels of ResNet bottlenecks only. "
                    f"Received a block of kind={kind!r}"
                )
            gate_groups = channel_gate_groups(path_width)
            block = ChannelGatedBlock(filters, path_width, strides=strides,
                                      gate_groups=gate_groups,
                                      layer_gate=self.gating == "lcnet", name=name,
                                      dtype=self.dtype)
            if self.gating == "channel":
                controller = ChannelGate(sum(gate_groups), dependent=self.dependent,
                                         segments=gate_groups, **common)
            else:
                controller = LCController(gate_groups, **common)
        gates, values = controller(x)
        self.gates.append(gates)
        return block([x, values])

    def outputs(self, inputs, outputs, flops_target, resource_loss_weight, dual_step=0.0,
                rate_loss="block"):
        """Adds the resource loss; returns the model outputs (a dict with category heads)."""
        if self.gates:
            table = flops_table(inputs, outputs)
            kwargs = dict(
                path_flops=[b["paths"] for b in table["blocks"]],
                always_on_flops=table["always_on"],
                loss_weight=resource_loss_weight,
                dual_step=dual_step,
                name="resource_loss",
                dtype=self.dtype,
            )
            if any("pairs" in b for b in table["blocks"]):
                kwargs["pair_flops"] = [b.get("pairs", []) for b in table["blocks"]]
            if self.gating == "aig":
                loss_layer = TargetRateLoss(flops_target, **kwargs)
            elif self.gating == "channel":
                loss_layer = BatchActivationLoss(flops_target, one_sided=self.one_sided, **kwargs)
            else:
                loss_layer = ResourceLoss(flops_target, rate_loss=rate_loss, **kwargs)
            outputs = loss_layer([outputs] + self.gates)
        if self.category_logits:
            named = {"logits": outputs}
            for i, logits in enumerate(self.category_logits):
                named[f"category_{i}"] = logits
            return named
        return outputs

    def category_loss_weights(self, first_weight, growth=10.0):
        """Weight of each controller's category loss: first_weight * growth**stage."""
        return [first_weight * growth**stage for stage in self.category_stages]
