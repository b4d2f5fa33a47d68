"""LC-Net's L-Net and C-Net, on the gate machinery (Xia, Yin, Dai & Jha,
"Fully Dynamic Inference with Deep Neural Networks", 2020).

Only the paper's abstract is available to us: "two compact networks, L-Net
and C-Net, predict on a per-instance basis which layers or filters/channels
are redundant and therefore should be skipped. L-Net and C-Net also learn how
to scale retained computation outputs to maximize task accuracy." Every other
detail below is our choice:

1. Granularity. "Layers" = residual blocks (skipping a whole residual branch
   keeps the shortcut, as in ConvNet-AIG / SkipNet); "channels" = groups of
   filters of the two inner convolutions of a bottleneck, with the same
   grouping as channel gating (`channel_gate_groups`: 8 and 4 gates), so the
   two methods are comparable and share `ChannelGatedBlock`.
2. Where the networks live. One L-Net and one C-Net *per block*, both reading
   the block input (GAP -> Dense(16) -> BN -> ReLU, the ConvNet-AIG gate
   network), rather than one global network reading the image: a per-block
   net sees the features the decision is about, costs ~C*16 MACs, and keeps
   the per-block controller protocol (`{block}_gate`) of the library. The
   block's controller `LCController` holds both (sublayers `l_net`, `c_net`).
3. Decisions. L-Net: one (off, on) logit pair -> hard straight-through
   Gumbel gate `l`; C-Net: one pair per channel group -> gates `c`. Same
   `GumbelGate` as every method; deterministic `1[logit > 0]` in inference
   (optionally stochastic); gates start ~85% open.
4. Scales. L-Net also outputs one scale `s_l` of the residual branch, C-Net
   one scale per channel group `s_c`: `scale = 1 + tanh(Dense(hidden))`, in
   (0, 2), starting at 1 (the plain network). Kept outputs are multiplied by
   them: the block computes
   `ReLU(shortcut + l s_l BN3(conv3(c2 s_c2 * ReLU(BN2(conv2(c1 s_c1 * ReLU(BN1(conv1 x))))))))`.
   Scales multiply after the ReLU (a positive per-channel rescaling, which
   the next convolution could absorb if it were static).
5. Skipping a layer skips its channels: the gates counted by FLOPs and losses
   are the effective ones `[l, l * c]` (an image that skips the block runs
   none of its channels). The FLOPs are exact: linear in the conv-1 and
   conv-3 channel gates, bilinear for conv 2 (see `ChannelGatedBlock`).
6. Joint training. L and C decisions are trained together, end to end, with
   the library's `ResourceLoss` on the effective gates (execution rate of
   every block and FLOPs ratio pulled to the target), the same loss as DMNN.
7. Forced gates (`force_gates`): the layer gate is on when `forced_rate > 0`,
   channel gates are forced per convolution as in channel gating, so the
   FLOPs ratio is about channel gating's at the same rate (forcing the layer
   gates at `rate` as well would multiply it by about `rate` once more).
"""

import keras
from keras import layers, ops

from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.aig_controller import AIGController, GatesAndValuesOutput, check_rate
from dmnn_keras.layers.gumbel_gate import GATE_DTYPE


@keras.saving.register_keras_serializable(package="dmnn_keras")
class LCController(GatesAndValuesOutput, keras.layers.Layer):
    """L-Net (layer skip + scale) and C-Net (channel-group skip + scale) of one block.

    Args:
        gate_groups: (gates of conv 1, gates of conv 2) of the block.
        hidden_units: width of both networks' hidden layer (16).
        initial_open, temperature, stochastic_inference, seed: as
            `AIGController` (C-Net uses seed + 1).
        forced_rate: None or a float in [0, 1] (see the module docstring).

    Call args:
        inputs: the block input `[batch, H, W, C]`.

    Returns:
        `(gates, values)`, both `[batch, 1 + sum(gate_groups)]`: the effective
        hard gates `[l, l * c]` (what FLOPs and losses count) and what the
        `ChannelGatedBlock(layer_gate=True)` multiplies by, `[l s_l, c s_c]`;
        float32 under any dtype policy, like every controller's outputs.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import ChannelGatedBlock, LCController
    x = np.random.rand(2, 8, 8, 64).astype("float32")
    gates, values = LCController(gate_groups=(8, 4))(x)
    gates.shape, values.shape  # ((2, 13), (2, 13))
    block = ChannelGatedBlock(filters=64, width=16, gate_groups=(8, 4), layer_gate=True)
    block([x, values]).shape  # (2, 8, 8, 64)
    ```
    """

    is_gate_controller = True

    def __init__(self, gate_groups, hidden_units=16, initial_open=0.85, temperature=1.0,
                 forced_rate=None, stochastic_inference=False, seed=None, **kwargs):
        check_keyword_arguments(self, LCController, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        check_rate("forced_rate", forced_rate)
        gate_groups = tuple(int(g) for g in gate_groups)
        if len(gate_groups) != 2 or any(g < 1 for g in gate_groups):
            raise ValueError(
                f"gate_groups must be two ints >= 1. Received: gate_groups={gate_groups}"
            )
        self.gate_groups = gate_groups
        self.hidden_units = hidden_units
        self.initial_open = initial_open
        self.temperature = temperature
        self.forced_rate = forced_rate
        self.stochastic_inference = stochastic_inference
        self.seed = seed
        self.groups = 1 + sum(gate_groups)
        self.category_dense = None

        # === Layers ===
        policy = self.dtype_policy  # sublayers compute in the controller's dtype
        common = dict(hidden_units=hidden_units, initial_open=initial_open,
                      temperature=temperature, stochastic_inference=stochastic_inference,
                      dtype=policy)
        self.l_net = AIGController(
            1, forced_rate=None if forced_rate is None else float(forced_rate > 0),
            seed=seed, name="l_net", **common,
        )
        self.c_net = AIGController(
            sum(gate_groups), segments=gate_groups, forced_rate=forced_rate,
            seed=None if seed is None else seed + 1, name="c_net", **common,
        )
        scale_init = dict(kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                          bias_initializer="zeros", dtype=policy)
        self.l_scale = layers.Dense(1, name="l_scale", **scale_init)
        self.c_scale = layers.Dense(sum(gate_groups), name="c_scale", **scale_init)

    def build(self, input_shape):
        self.l_net.build(input_shape)
        self.c_net.build(input_shape)
        self.l_scale.build((input_shape[0], self.hidden_units))
        self.c_scale.build((input_shape[0], self.hidden_units))
        self.input_channels = int(input_shape[-1])
        self.built = True

    def call(self, inputs, training=None):
        h_l = self.l_net.hidden(inputs, training)
        h_c = self.c_net.hidden(inputs, training)
        l = self.l_net.decide(self.l_net.log_odds_from_hidden(h_l), training)
        c = self.c_net.decide(self.c_net.log_odds_from_hidden(h_c), training)
        # Scales in float32 like the gates they multiply (see `GumbelGate`).
        s_l = 1.0 + ops.tanh(ops.cast(self.l_scale(h_l), GATE_DTYPE))
        s_c = 1.0 + ops.tanh(ops.cast(self.c_scale(h_c), GATE_DTYPE))
        gates = ops.concatenate([l, l * c], axis=-1)
        values = ops.concatenate([l * s_l, c * s_c], axis=-1)
        return gates, values

    def compute_flops(self):
        """Multiply-accumulates per sample of both networks and scale heads."""
        return (
            self.l_net.compute_flops() + self.c_net.compute_flops()
            + self.hidden_units * (1 + sum(self.gate_groups))
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            gate_groups=list(self.gate_groups), hidden_units=self.hidden_units,
            initial_open=self.initial_open, temperature=self.temperature,
            forced_rate=self.forced_rate, stochastic_inference=self.stochastic_inference,
            seed=self.seed,
        )
        return config
