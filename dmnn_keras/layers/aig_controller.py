"""The ConvNet-AIG gate network (Veit & Belongie, "Convolutional Networks with
Adaptive Inference Graphs", ECCV 2018)."""

import math

import keras
import numpy as np
from keras import layers, ops

from dmnn_keras.gate_decisions import forced_pattern, hard_gates, tile_pattern
from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.gumbel_gate import GumbelGate, gate_spec
from dmnn_keras.layers.multi_path_block import batch_norm_layer


def check_rate(name, value):
    """Raises ValueError unless value is None or a number in [0, 1]."""
    if value is not None and not (
        isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    ):
        raise ValueError(f"{name} must be None or a number in [0, 1]. Received: {name}={value!r}")


class GatesAndValuesOutput:
    """Output shapes of a controller layer returning `(gates, values)`, both `[batch, groups]`.

    Mixed into `AIGController` and `LCController` (before `keras.layers.Layer`),
    whose `groups` attribute is the number of gates. Both outputs are float32
    whatever the dtype policy (see `GumbelGate`).
    """

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.groups), (input_shape[0], self.groups)

    def compute_output_spec(self, inputs, training=None):
        return tuple(gate_spec(s) for s in self.compute_output_shape(inputs.shape))


@keras.saving.register_keras_serializable(package="dmnn_keras")
class AIGController(GatesAndValuesOutput, keras.layers.Layer):
    """Per-sample on/off decisions from a tiny network: GAP -> Dense -> BN -> ReLU -> Dense(2 per gate).

    ConvNet-AIG's gate: the block input is average-pooled, passed through
    `Dense(hidden_units)`, BatchNorm and ReLU, and a `Dense(2 * groups)` gives
    an (off, on) logit pair per gate. The on-probability is the softmax of the
    pair, so `log_odds = on - off` is fed to a `GumbelGate` (the difference of
    the two Gumbel samples of a 2-way Gumbel-softmax is exactly the logistic
    noise `GumbelGate` adds): hard 0/1 straight-through gates in training,
    `1[log_odds > 0]` in inference. The "on" biases start at
    `log(initial_open / (1 - initial_open))` and the last kernel is tiny, so
    in training every gate is on with probability ~`initial_open`
    (0.85, as in the paper) at the start, and all gates are on in inference.

    The same layer is the conditional gate network of channel gating
    (`ChannelGate`, with `groups` gates) and, with `dependent=False`, the
    pruning-mode gate: one learned (off, on) logit pair per gate, the same for
    every input (weight `gate_logits` `[groups, 2]`; the input only gives the
    batch size).

    Args:
        groups: int >= 1, number of gates.
        hidden_units: width of the hidden Dense (16 in ConvNet-AIG).
        dependent: True: input-dependent gate network; False: input-independent
            learned logits (pruning).
        initial_open: float in (0, 1), initial on-probability of every gate.
        temperature, min_active, seed: passed to `GumbelGate`.
        forced_rate: None, or a float in [0, 1]: ignore the logits; in each
            segment the first `round(forced_rate * size)` gates (halves
            rounded up, `forced_pattern`) are on for every image
            (`dmnn_keras.force_gates`).
        stochastic_inference: if True the gates stay stochastic (Gumbel noise)
            in inference too, as in the original ConvNet-AIG; default False:
            deterministic `1[log_odds > 0]`.
        segments: None (one segment of `groups` gates) or a tuple of segment
            sizes summing to `groups` (e.g. the gates of two convolutions);
            only `forced_rate` looks at it.

    Call args:
        inputs: the block input `[batch, H, W, C]`.

    Returns:
        `(gates, values)`, both `[batch, groups]`: the hard gates, and what the
        gated block multiplies by (the same gates here; `LCController`
        returns scaled gates instead). `gates` is what FLOPs and losses count.
        Both are float32 under any dtype policy (the gate network computes
        in the layer's compute dtype; see `GumbelGate`).

    Example:
    ```python
    import numpy as np
    from dmnn_keras import AIGController
    gates, values = AIGController(groups=1)(np.random.rand(2, 8, 8, 16).astype("float32"))
    np.asarray(gates)  # [[1.0], [1.0]]
    gates, _ = AIGController(groups=1, seed=0)(np.ones((2, 8, 8, 16)), training=True)
    gates.shape  # (2, 1)
    ```
    """

    is_gate_controller = True

    def __init__(
        self,
        groups=1,
        hidden_units=16,
        dependent=True,
        initial_open=0.85,
        temperature=1.0,
        min_active=0,
        forced_rate=None,
        stochastic_inference=False,
        segments=None,
        seed=None,
        **kwargs,
    ):
        check_keyword_arguments(self, AIGController, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"groups must be an int >= 1. Received: groups={groups!r}")
        if not isinstance(hidden_units, int) or hidden_units < 1:
            raise ValueError(
                f"hidden_units must be an int >= 1. Received: hidden_units={hidden_units!r}"
            )
        if not (isinstance(initial_open, (int, float)) and 0.0 < initial_open < 1.0):
            raise ValueError(
                f"initial_open must be a number in (0, 1). Received: initial_open={initial_open!r}"
            )
        check_rate("forced_rate", forced_rate)
        segments = (groups,) if segments is None else tuple(int(s) for s in segments)
        if sum(segments) != groups or any(s < 1 for s in segments):
            raise ValueError(
                f"segments must be sizes >= 1 summing to groups={groups}. Received: segments={segments}"
            )
        self.groups = groups
        self.hidden_units = hidden_units
        self.dependent = bool(dependent)
        self.initial_open = float(initial_open)
        self.temperature = temperature
        self.min_active = min_active
        self.forced_rate = forced_rate
        self.stochastic_inference = bool(stochastic_inference)
        self.segments = segments
        self.seed = seed
        self.category_dense = None  # no category head (profile() looks for one)

        # === Layers ===
        self.on_bias = math.log(self.initial_open / (1.0 - self.initial_open))
        pair_bias = [0.0, self.on_bias] * groups  # (off, on) per gate
        policy = self.dtype_policy  # sublayers compute in the controller's dtype
        if self.dependent:
            self.pool = layers.GlobalAveragePooling2D(name="pool", dtype=policy)
            self.hidden_dense = layers.Dense(hidden_units, name="hidden_dense", dtype=policy)
            self.hidden_bn = batch_norm_layer("hidden_bn", policy)
            self.logits_dense = layers.Dense(
                2 * groups,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                bias_initializer=keras.initializers.Constant(pair_bias),
                name="logits_dense",
                dtype=policy,
            )
        self.gate = GumbelGate(temperature, min_active=min_active, seed=seed, name="gate",
                               dtype=policy)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} expects a 4D feature map [batch, H, W, C]. "
                f"Received shape: {input_shape}"
            )
        self.input_channels = int(input_shape[-1])
        if self.dependent:
            self.pool.build(input_shape)
            self.hidden_dense.build((input_shape[0], self.input_channels))
            self.hidden_bn.build((input_shape[0], self.hidden_units))
            self.logits_dense.build((input_shape[0], self.hidden_units))
        else:
            self.gate_logits = self.add_weight(
                name="gate_logits",
                shape=(self.groups, 2),
                initializer=keras.initializers.Constant(
                    [[0.0, self.on_bias]] * self.groups
                ),
            )
        self.gate.build((input_shape[0], self.groups))
        self.built = True

    def hidden(self, x, training=None):
        """`ReLU(BN(Dense(GAP(x))))` `[batch, hidden_units]` (dependent mode)."""
        h = self.hidden_dense(self.pool(x))
        return ops.relu(self.hidden_bn(h, training=training))

    def log_odds(self, x, training=None):
        """`on - off` logit of every gate, `[batch, groups]`."""
        if self.dependent:
            return self.log_odds_from_hidden(self.hidden(x, training))
        pair = ops.broadcast_to(self.gate_logits[None], (ops.shape(x)[0], self.groups, 2))
        return pair[..., 1] - pair[..., 0]

    def log_odds_from_hidden(self, hidden):
        """`on - off` logits `[batch, groups]` from the hidden state (dependent mode)."""
        pair = ops.reshape(self.logits_dense(hidden), (-1, self.groups, 2))
        return pair[..., 1] - pair[..., 0]

    def decide(self, log_odds, training=None):
        """Hard gates from log-odds (forced, stochastic or deterministic)."""
        if self.forced_rate is not None:
            return self.forced_gates(ops.shape(log_odds)[0])
        stochastic = bool(training) or self.stochastic_inference
        return self.gate(log_odds, training=stochastic)

    def call(self, inputs, training=None):
        gates = self.decide(self.log_odds(inputs, training), training)
        return gates, gates

    def forced_pattern(self):
        """The forced gate pattern `[groups]` (first round(rate * size) on per segment)."""
        return forced_pattern(self.forced_rate, self.segments, self.min_active)

    def forced_gates(self, batch_size):
        return tile_pattern(self.forced_pattern(), batch_size)

    def static_gates(self):
        """Inference gates `[groups]` (numpy) of an input-independent controller."""
        if self.forced_rate is not None:
            return np.asarray(self.forced_pattern(), dtype="float32")
        if self.dependent:
            raise ValueError(
                "static_gates needs an input-independent controller (dependent=False). "
                f"Received: {self.name} with dependent=True"
            )
        logits = keras.ops.convert_to_numpy(self.gate_logits)
        log_odds = logits[None, :, 1] - logits[None, :, 0]
        return keras.ops.convert_to_numpy(hard_gates(log_odds, self.min_active))[0]

    def compute_flops(self):
        """Multiply-accumulates per sample (0 for input-independent gates)."""
        if not self.dependent:
            return 0
        return self.input_channels * self.hidden_units + self.hidden_units * 2 * self.groups

    def get_config(self):
        config = super().get_config()
        config.update(
            groups=self.groups,
            hidden_units=self.hidden_units,
            dependent=self.dependent,
            initial_open=self.initial_open,
            temperature=self.temperature,
            min_active=self.min_active,
            forced_rate=self.forced_rate,
            stochastic_inference=self.stochastic_inference,
            segments=list(self.segments),
            seed=self.seed,
        )
        return config
