"""Wiring gate controllers to blocks, shared by every builder."""

from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.layers.resource_loss import ResourceLoss, check_flops_target
from dmnn_keras.models.dynamic_model import flops_table

GATINGS = (None, "dmnn")
DEFAULT_RESOURCE_LOSS_WEIGHT = 2.0


def check_gating(gating, groups, flops_target):
    """Validates the gating arguments common to every builder."""
    if gating not in GATINGS:
        raise ValueError(f"gating must be one of {GATINGS}. Received: gating={gating!r}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be an int >= 1. Received: groups={groups!r}")
    check_flops_target(flops_target)


class GateWiring:
    """Builds gated blocks one after another and collects what the loss needs.

    Args:
        gating: None (static blocks) or "dmnn".
        controller_kwargs: extra `GateController` arguments (hidden_units,
            use_previous_state, temperature, forced_rate, initial_gate_bias).
        num_categories: 0, or the size of every controller's category head.
        seed: None or int; controller i uses seed + i.
    """

    def __init__(self, gating, controller_kwargs=None, num_categories=0, seed=None):
        self.gating = gating
        self.controller_kwargs = dict(controller_kwargs or {})
        self.num_categories = num_categories
        self.seed = seed
        self.hidden = None
        self.gates = []
        self.category_logits = []
        self.category_stages = []

    def block(self, x, stage, name, **block_kwargs):
        """Applies a `MultiPathBlock` named `name` (and its controller `name_gate`)."""
        if self.gating is None:
            return MultiPathBlock(gated=False, name=name, **block_kwargs)(x)
        block = MultiPathBlock(gated=True, name=name, **block_kwargs)
        has_shortcut = block.kind == "bottleneck" or (
            block_kwargs.get("strides", 1) == 1 and x.shape[-1] == block.filters
        )
        controller = GateController(
            block.groups,
            num_categories=self.num_categories,
            min_active=0 if has_shortcut else 1,
            seed=None if self.seed is None else self.seed + len(self.gates),
            name=name + "_gate",
            **self.controller_kwargs,
        )
        outputs = controller(x if self.hidden is None else [x, self.hidden])
        gates, self.hidden = outputs[0], outputs[1]
        if self.num_categories:
            self.category_logits.append(outputs[2])
            self.category_stages.append(stage)
        self.gates.append(gates)
        return block([x, gates])

    def outputs(self, inputs, outputs, flops_target, resource_loss_weight):
        """Adds the resource loss; returns the model outputs (a dict with category heads)."""
        if self.gates:
            table = flops_table(inputs, outputs)
            outputs = ResourceLoss(
                flops_target,
                path_flops=[b["paths"] for b in table["blocks"]],
                always_on_flops=table["always_on"],
                loss_weight=resource_loss_weight,
                name="resource_loss",
            )([outputs] + self.gates)
        if self.category_logits:
            named = {"logits": outputs}
            for i, logits in enumerate(self.category_logits):
                named[f"category_{i}"] = logits
            return named
        return outputs

    def category_loss_weights(self, first_weight, growth=10.0):
        """Weight of each controller's category loss: first_weight * growth**stage."""
        return [first_weight * growth**stage for stage in self.category_stages]
