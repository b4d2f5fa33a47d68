"""The DMNN gate controller: one per multi-path block."""

import keras
import numpy as np
from keras import layers, ops

from dmnn_keras.gate_decisions import forced_pattern, tile_pattern
from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.gumbel_gate import GumbelGate, gate_spec
from dmnn_keras.layers.resource_loss import prediction_uncertainty


@keras.saving.register_keras_serializable(package="dmnn_keras")
class GateController(keras.layers.Layer):
    """Decides per sample which sub-blocks of a block run.

    `hidden = ReLU(Dense(GAP(x))) [+ ReLU(Dense(previous_hidden))]`, then one
    logit per sub-block, turned into hard 0/1 gates by a `GumbelGate`.
    With `difficulty_input=True` the call also takes the logits of an earlier
    classifier head (the model's difficulty head, see `GatingConfig`) and
    adds `u * w` to the gate logits: `u = prediction_uncertainty(head
    logits)` `[batch]` in [0, 1] (no gradient), `w` `[groups]` learned from
    zeros (`difficulty_dense`), so a gate can open for images the head is
    unsure of and close for the others.
    Optionally a category head (Dense on `hidden`) predicts a coarse category
    for category supervision; it is used only by the training loss.

    Args:
        groups: int >= 1, number of sub-blocks (gates).
        hidden_units: width of the hidden state.
        use_previous_state: whether the call takes the previous controller's
            hidden state (ignored by the first controller of a network).
        num_categories: 0, or the number of coarse categories of the
            category head.
        initial_gate_bias: initial bias of the gate logits; 2.0 starts gates
            on with probability sigmoid(2) = 0.88 in training.
        temperature, min_active, seed: passed to `GumbelGate`.
        forced_rate: None, or a float in [0, 1]: ignore the logits and turn on
            the first `round(forced_rate * groups)` sub-blocks (halves rounded
            up, `forced_pattern`) for every sample (for benchmarks and export
            checks; see `dmnn_keras.force_gates`).
        difficulty_input: whether the call's last input is a difficulty
            head's logits `[batch, classes]`.

    Call args:
        inputs: `x` `[batch, H, W, C]`, or `[x, previous_hidden]` with
            previous_hidden `[batch, hidden_units]`; with `difficulty_input`
            `[x, difficulty_logits]` or `[x, previous_hidden, difficulty_logits]`.

    Returns:
        `(gates, hidden)` with gates `[batch, groups]` in {0, 1} and hidden
        `[batch, hidden_units]`; `(gates, hidden, category_logits)` with
        category_logits `[batch, num_categories]` when `num_categories > 0`.
        The gates are float32 under any dtype policy (see `GumbelGate`), the
        others in the layer's compute dtype.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import GateController
    x = np.random.rand(2, 8, 8, 16).astype("float32")
    first, second = GateController(groups=4), GateController(groups=4)
    gates, hidden = first(x)
    gates.shape, hidden.shape  # ((2, 4), (2, 32))
    gates, hidden = second([x, hidden])  # with the previous controller's state
    gates.shape  # (2, 4)
    ```
    """

    def __init__(
        self,
        groups,
        hidden_units=32,
        use_previous_state=True,
        num_categories=0,
        initial_gate_bias=2.0,
        temperature=1.0,
        min_active=0,
        forced_rate=None,
        seed=None,
        difficulty_input=False,
        **kwargs,
    ):
        check_keyword_arguments(self, GateController, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be an int >= 1. Received: groups={groups}")
        if forced_rate is not None and not 0.0 <= forced_rate <= 1.0:
            raise ValueError(
                f"forced_rate must be None or in [0, 1]. Received: forced_rate={forced_rate}"
            )
        self.groups = groups
        self.hidden_units = hidden_units
        self.use_previous_state = use_previous_state
        self.num_categories = num_categories
        self.initial_gate_bias = initial_gate_bias
        self.temperature = temperature
        self.min_active = min_active
        if not isinstance(difficulty_input, bool):
            raise ValueError("difficulty_input must be True or False. "
                             f"Received: difficulty_input={difficulty_input!r}")
        self.forced_rate = forced_rate
        self.seed = seed
        self.difficulty_input = difficulty_input

        # === Layers ===
        policy = self.dtype_policy  # sublayers compute in the controller's dtype
        self.pool = layers.GlobalAveragePooling2D(name="pool", dtype=policy)
        self.input_dense = layers.Dense(hidden_units, activation="relu", name="input_dense",
                                        dtype=policy)
        self.state_dense = layers.Dense(hidden_units, activation="relu", name="state_dense",
                                        dtype=policy)
        self.logits_dense = layers.Dense(
            groups,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            bias_initializer=keras.initializers.Constant(initial_gate_bias),
            name="logits_dense",
            dtype=policy,
        )
        self.difficulty_dense = layers.Dense(
            groups, use_bias=False, kernel_initializer="zeros", name="difficulty_dense",
            dtype=policy,
        ) if difficulty_input else None
        self.gate = GumbelGate(temperature, min_active=min_active, seed=seed, name="gate",
                               dtype=policy)
        self.category_dense = (
            layers.Dense(num_categories, name="category_dense", dtype=policy)
            if num_categories else None
        )

    def _split_inputs(self, inputs):
        """`(x, previous_hidden or None, difficulty_logits or None)` from the call's inputs."""
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        inputs = list(inputs)
        difficulty = None
        if self.difficulty_input:
            if len(inputs) < 2:
                raise ValueError("A GateController with difficulty_input=True takes [x, "
                                 "difficulty_logits] or [x, previous_hidden, difficulty_logits]. "
                                 f"Received: {len(inputs)} input(s)")
            difficulty = inputs.pop()
        return inputs[0], inputs[1] if len(inputs) > 1 else None, difficulty

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)):
            x_shape, state_shape, difficulty_shape = self._split_inputs(input_shape)
        else:
            x_shape, state_shape, difficulty_shape = self._split_inputs([input_shape])
        if len(x_shape) != 4:
            raise ValueError(
                f"GateController expects a 4D feature map [batch, H, W, C]. Received shape: {x_shape}"
            )
        self.pool.build(x_shape)
        self.input_dense.build((x_shape[0], x_shape[-1]))
        self.has_state_input = self.use_previous_state and state_shape is not None
        if self.has_state_input:
            self.state_dense.build((x_shape[0], self.hidden_units))
        self.logits_dense.build((x_shape[0], self.hidden_units))
        if self.difficulty_dense is not None:
            if len(difficulty_shape) != 2:
                raise ValueError("difficulty_logits must be [batch, classes]. Received shape: "
                                 f"{tuple(difficulty_shape)}")
            self.difficulty_dense.build((x_shape[0], 1))
        self.gate.build((x_shape[0], self.groups))
        if self.category_dense is not None:
            self.category_dense.build((x_shape[0], self.hidden_units))
        self.input_channels = int(x_shape[-1])
        self.built = True

    def hidden_state(self, x, previous_hidden=None):
        """Hidden state `[batch, hidden_units]` of the controller."""
        hidden = self.input_dense(self.pool(x))
        if self.has_state_input and previous_hidden is not None:
            hidden = hidden + self.state_dense(previous_hidden)
        return hidden

    def logits_from_hidden(self, hidden, difficulty_logits=None):
        """Gate logits `[batch, groups]` from the hidden state and, with `difficulty_input`, the
        difficulty head's logits: `logits_dense(hidden) [+ u * w]`, u its uncertainty (no gradient)."""
        logits = self.logits_dense(hidden)
        if self.difficulty_dense is None:
            return logits
        uncertainty = prediction_uncertainty(ops.stop_gradient(difficulty_logits))
        return logits + self.difficulty_dense(ops.cast(uncertainty[:, None], self.compute_dtype))

    def call(self, inputs, training=None):
        x, previous_hidden, difficulty = self._split_inputs(inputs)
        hidden = self.hidden_state(x, previous_hidden)
        logits = self.logits_from_hidden(hidden, difficulty)
        if self.forced_rate is not None:
            gates = self.forced_gates(ops.shape(logits)[0])
        else:
            gates = self.gate(logits, training=training)
        if self.category_dense is not None:
            return gates, hidden, self.category_dense(hidden)
        return gates, hidden

    def logit_weights(self):
        """`(kernel, bias)` as numpy: `[hidden_units, groups]` (one more row, the difficulty
        weights, with `difficulty_input`) and `[groups]`; a zero column makes a gate constant."""
        kernel = keras.ops.convert_to_numpy(self.logits_dense.kernel)
        if self.difficulty_dense is not None:
            kernel = np.concatenate(
                [kernel, keras.ops.convert_to_numpy(self.difficulty_dense.kernel)], axis=0)
        return np.array(kernel), np.array(keras.ops.convert_to_numpy(self.logits_dense.bias))

    def set_logit_weights(self, kernel, bias):
        """Sets the weights `logit_weights` returns."""
        self.logits_dense.kernel.assign(kernel[:self.hidden_units])
        self.logits_dense.bias.assign(bias)
        if self.difficulty_dense is not None:
            self.difficulty_dense.kernel.assign(kernel[self.hidden_units:])

    def forced_gates(self, batch_size):
        """Gates `[batch, groups]`, the first round(forced_rate * groups) on (`forced_pattern`)."""
        return tile_pattern(forced_pattern(self.forced_rate, (self.groups,), self.min_active),
                            batch_size)

    def compute_flops(self):
        """Multiply-accumulates per sample (the category head is training-only)."""
        flops = self.input_channels * self.hidden_units + self.hidden_units * self.groups
        if self.difficulty_input:
            flops += self.groups
        if self.has_state_input:
            flops += self.hidden_units * self.hidden_units
        return flops

    def compute_output_shape(self, input_shape):
        x_shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        batch = x_shape[0]
        shapes = [(batch, self.groups), (batch, self.hidden_units)]
        if self.num_categories:
            shapes.append((batch, self.num_categories))
        return tuple(shapes)

    def compute_output_spec(self, inputs, training=None):
        x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        gates_shape, *others = self.compute_output_shape(x.shape)
        # float32 gates (see `GumbelGate`); hidden state and category logits in the compute dtype.
        return (gate_spec(gates_shape),) + tuple(
            keras.KerasTensor(shape, dtype=self.compute_dtype) for shape in others
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            groups=self.groups,
            hidden_units=self.hidden_units,
            use_previous_state=self.use_previous_state,
            num_categories=self.num_categories,
            initial_gate_bias=self.initial_gate_bias,
            temperature=self.temperature,
            min_active=self.min_active,
            forced_rate=self.forced_rate,
            seed=self.seed,
            difficulty_input=self.difficulty_input,
        )
        return config
