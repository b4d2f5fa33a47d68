"""Wiring gate controllers to blocks, shared by every builder."""

from dmnn_keras.flops import flops_table
from dmnn_keras.gate_decisions import carried_active
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.methods import METHODS, GatingConfig, get_method
from dmnn_keras.models.dynamic_model import DIFFICULTY_OUTPUT

# `GatingConfig`'s defaults under their former names.
DEFAULT_RESOURCE_LOSS_WEIGHT = GatingConfig.resource_loss_weight
DEFAULT_DUAL_STEP = GatingConfig.dual_step
DEFAULT_RATE_LOSS = GatingConfig.rate_loss


def check_gating(gating, groups, kind, model_name):
    """Checks that the model's `groups` and block `kind` suit `gating`; returns its `GatingMethod`.

    `gating`: a `GatingConfig`'s (already valid) method name, or None;
    `kind` is the block kind the model gates ("bottleneck", "inverted_residual").
    """
    method = get_method(gating)
    per_stage = check_groups(groups)
    if method is not None and not method.multi_path and any(g != 1 for g in per_stage):
        raise ValueError(
            f"gating={gating!r} gates whole blocks or their channels and needs groups=1. "
            f"Received: groups={groups}"
        )
    if method is not None and kind not in method.block_kinds:
        allowed = (None,) + tuple(n for n, m in METHODS.items() if kind in m.block_kinds)
        raise ValueError(
            f"{model_name} supports gating {allowed} (gating={gating!r} gates blocks of kind "
            f"{method.block_kinds}, not {kind!r}). Received: gating={gating!r}"
        )
    return method


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
DIFFICULTY_SUFFIX = "_difficulty"  # the difficulty head's layers: `{block}_difficulty[_pool, ...]`


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


class GateWiring:
    """Builds gated blocks one after another and collects what the loss needs.

    The gating method (`dmnn_keras.methods`) builds each gated block and its
    controller, and picks the resource loss; this class keeps the state they
    share along the network.

    Args:
        method: None (static blocks) or a `GatingMethod`.
        config: the model's `GatingConfig` (controller, loss and method options).
        dtype: None (the global policy) or the dtype policy of every block,
            controller and loss layer.

    Attributes:
        gates: the gates `[batch, n]` of every gated block so far.
        hidden: the previous DMNN controller's state, or None.
        category_logits, category_stages: the category heads and their stages.
        difficulty_logits: the difficulty head's logits `[batch, classes]`
            once its block is built (`config.difficulty_head`), else None.
        difficulty_trained: whether that head is a model output trained on
            the labels (with the top) or only feeds the controllers.
    """

    def __init__(self, method, config, dtype=None):
        self.method = method
        self.config = config
        self.dtype = dtype
        self.hidden = None
        self.forced_carry = 0.0
        self.gates = []
        self.category_logits = []
        self.category_stages = []
        self.difficulty_logits = None
        self.difficulty_trained = False
        self.gates_before_difficulty = 0
        if config.difficulty_head is not None and (method is None or not method.multi_path):
            raise ValueError(
                "difficulty_head feeds DMNN gate controllers: it needs gating='dmnn'. "
                f"Received: difficulty_head={config.difficulty_head!r} with "
                f"gating={config.gating!r}")

    def block(self, x, stage, name, gate=True, **block_kwargs):
        """Applies block `name` (a `MultiPathBlock` or the method's block) and its controller `name_gate`.

        With `gate=False` (or no gating) the block is static: every path runs,
        no controller.
        """
        if self.method is None or not gate:
            return MultiPathBlock(gated=False, name=name, dtype=self.dtype, **block_kwargs)(x)
        return self.method.block(self, x, stage, name, **block_kwargs)

    def after_block(self, x, name, num_classes, trained=True):
        """Attaches the difficulty head to block output `x` `[batch, H, W, C]` if `name` is its block.

        `num_classes`: the classes of the head (the model's `num_classes`).
        `trained`: whether the head is a model output trained on the labels
        (with the top); without the top it only feeds the controllers, as
        loaded (e.g. from a preset): no labels reach it. Returns `x`.
        """
        if name != self.config.difficulty_head:
            return x
        from dmnn_keras.models.early_exit import exit_head

        grid = 2 if int(x.shape[1]) % 2 == 0 and int(x.shape[2]) % 2 == 0 else 1
        self.difficulty_logits = exit_head(x, name, num_classes, grid, self.dtype,
                                           suffix=DIFFICULTY_SUFFIX)
        self.difficulty_trained = trained
        self.gates_before_difficulty = len(self.gates)
        return x

    def check_difficulty_head(self, block_names):
        """Raises ValueError unless the difficulty head (if any) sits before a gated block."""
        name = self.config.difficulty_head
        if name is None:
            return
        if name not in block_names:
            raise ValueError(f"difficulty_head names a block the model does not have: {name!r}. "
                             f"Allowed: {list(block_names)}")
        if len(self.gates) == self.gates_before_difficulty:
            raise ValueError(
                f"difficulty_head must come before a gated block (its controllers read it). "
                f"Received: difficulty_head={name!r}, after which no block is gated")

    def controller_seed(self):
        """Seed of the next controller: None, or the model's seed + the number of gated blocks so far."""
        return None if self.config.seed is None else self.config.seed + len(self.gates)

    def controller_kwargs(self, name, forced_rate):
        """The arguments every method's controller of block `name` takes from the model.

        `forced_rate` is the block's own (the method decides it, e.g. `forced_rate`
        for blocks forced as a whole); the controller is named `name + "_gate"`.
        """
        return dict(
            hidden_units=self.config.controller_units,
            temperature=self.config.temperature,
            forced_rate=forced_rate,
            seed=self.controller_seed(),
            name=name + "_gate",
            dtype=self.dtype,
        )

    def forced_rate(self, groups, min_active):
        """This block's share of forced sub-blocks (None if gates are not forced), see `carried_active`."""
        rate = self.config.forced_gate_rate
        if rate is None:
            return None
        active, self.forced_carry = carried_active(rate, groups, min_active, self.forced_carry)
        return active / groups

    def outputs(self, inputs, outputs, logits=True):
        """Adds the resource loss; returns the model outputs (a dict with category heads).

        `logits`: whether `outputs` are the logits (not features or
        probabilities); `uncertainty_spread > 0` needs them, unless a
        difficulty head gives the uncertainty.
        """
        spread = self.config.uncertainty_spread
        if spread and not logits and self.difficulty_logits is None:
            raise ValueError(
                "uncertainty_spread > 0 reads the model's logits: it needs include_top=True and "
                "classifier_activation=None, or a difficulty_head. Received: "
                f"uncertainty_spread={spread!r} with a model that outputs features or "
                "probabilities")
        if self.gates:
            table = flops_table(inputs, outputs)
            kwargs = dict(
                path_flops=[b["paths"] for b in table["blocks"]],
                always_on_flops=table["always_on"],
                loss_weight=self.config.resource_loss_weight,
                dual_step=self.config.dual_step,
                name="resource_loss",
                dtype=self.dtype,
            )
            if any("pairs" in b for b in table["blocks"]):
                kwargs["pair_flops"] = [b.get("pairs", []) for b in table["blocks"]]
            uncertainty = [] if self.difficulty_logits is None or not spread else [
                self.difficulty_logits]
            if uncertainty:
                kwargs["uncertainty_from_input"] = True
            loss_layer = self.method.loss_layer(self.config, **kwargs)
            if spread and getattr(loss_layer, "uncertainty_spread", 0.0) != spread:
                raise ValueError(
                    f"uncertainty_spread applies to the gatings whose loss is a ResourceLoss "
                    f"(dmnn, lcnet). Received: uncertainty_spread={spread!r} with "
                    f"gating={self.config.gating!r}")
            outputs = loss_layer([outputs] + uncertainty + self.gates)
        if self.category_logits or self.difficulty_trained:
            named = {"logits": outputs}
            for i, logits in enumerate(self.category_logits):
                named[f"category_{i}"] = logits
            if self.difficulty_trained:
                named[DIFFICULTY_OUTPUT] = self.difficulty_logits
            return named
        return outputs

    def category_loss_weights(self, first_weight, growth=10.0):
        """Weight of each controller's category loss: first_weight * growth**stage."""
        return [first_weight * growth**stage for stage in self.category_stages]

    def loss_weights(self):
        """`DynamicModel`'s weights of the heads' losses: each category head's and the difficulty head's."""
        return dict(
            category_loss_weights=self.category_loss_weights(self.config.category_loss_weight),
            difficulty_loss_weight=(self.config.difficulty_loss_weight
                                    if self.difficulty_trained else 0.0))
