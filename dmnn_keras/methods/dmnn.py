"""DMNN (the paper's method): a `GateController` per block choosing sub-blocks of a `MultiPathBlock`."""

from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock
from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.multi_path_block import MultiPathBlock, shortcut_kind
from dmnn_keras.methods.base import GatingMethod


class DMNN(GatingMethod):
    """Multi-path blocks; one recurrent controller per block, optional category heads.

    Export: the core `MultiPathBlock` / `GateController` converters of
    `dmnn_keras.export.block_converters`, and the `ChannelGatedBlock` one
    for `split="cross"`. No pruning rule (gates depend on the input).
    """

    name = "dmnn"
    multi_path = True

    def block(self, wiring, x, stage, name, cross=False, switchable_norms=False, **block_kwargs):
        """`cross=True` (ResNet `split="cross"`): a `ChannelGatedBlock(tie_gates=True)`."""
        config = wiring.config
        groups = block_kwargs["groups"]
        if cross:
            block = ChannelGatedBlock(
                block_kwargs["filters"], block_kwargs["path_width"] * groups,
                strides=block_kwargs["strides"], gate_groups=(groups, groups), tie_gates=True,
                switchable_norms=switchable_norms, name=name, dtype=wiring.dtype)
            min_active = 0  # a bottleneck always has a shortcut (identity or projection)
        else:
            block = MultiPathBlock(gated=True, name=name, dtype=wiring.dtype, **block_kwargs)
            shortcut = shortcut_kind(block.kind, x.shape[-1], block.filters, block.strides)
            min_active = 0 if shortcut is not None else 1
        difficulty = wiring.difficulty_logits
        controller = GateController(
            groups,
            use_previous_state=config.use_previous_state,
            num_categories=config.num_categories,
            min_active=min_active,
            difficulty_input=difficulty is not None,
            **wiring.controller_kwargs(name, wiring.forced_rate(groups, min_active)),
        )
        inputs = [x] + ([] if wiring.hidden is None else [wiring.hidden]) + (
            [] if difficulty is None else [difficulty])
        outputs = controller(inputs[0] if len(inputs) == 1 else inputs)
        gates, wiring.hidden = outputs[0], outputs[1]
        if config.num_categories:
            wiring.category_logits.append(outputs[2])
            wiring.category_stages.append(stage)
        wiring.gates.append(gates)
        return block([x, gates])

    def export_converters(self):
        from dmnn_keras.export import method_converters

        return {ChannelGatedBlock: method_converters.convert_channel_gated_block}
