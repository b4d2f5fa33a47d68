"""`DynamicModel`: the functional model class shared by every builder."""

import os

import keras
from keras import ops

# The network FLOPs live in dmnn_keras.flops; their old names stay importable from here.
from dmnn_keras.flops import (  # noqa: F401
    block_full_flops,
    executed_block_flops,
    executed_flops_per_image,
    flops_table,
)
from dmnn_keras.flops import executed_flops as executed_flops_tensor  # noqa: F401
from dmnn_keras.keras_compat import (
    build_before_first_step, producing_layer, scale_additional_loss)
from dmnn_keras.keyword_arguments import MODEL_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.resource_loss import ResourceLoss

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_VARIANCE = tuple((s * 255) ** 2 for s in (0.229, 0.224, 0.225))


def normalization_layer(dtype=None):
    """Inputs are raw pixels in [0, 255]; models normalise them themselves."""
    return keras.layers.Normalization(
        mean=IMAGENET_MEAN, variance=IMAGENET_VARIANCE, name="normalize", dtype=dtype
    )


def model_dtype_policy(dtype):
    """A builder's `dtype` (None, a policy name, a `keras.DTypePolicy` or its config) as a policy.

    None stays None: the layers then take the global policy
    (`keras.mixed_precision.set_global_policy`) when they are created.
    """
    return None if dtype is None else keras.dtype_policies.get(dtype)


def check_input_shape(input_shape):
    """Raises ValueError unless input_shape is (H, W, 3)."""
    if input_shape is None or len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            "input_shape must be (height, width, 3) for RGB images. "
            f"Received: input_shape={input_shape}"
        )


# keras.applications arguments of every builder (`DynamicResNet`, `DynamicMobileNetV2`).
POOLINGS = (None, "avg", "max")
SMALL_INPUT_SHAPE = (32, 32, 3)  # the CIFAR-sized builders' default


def small_input_shape(input_shape, builder_kwargs):
    """A CIFAR-sized builder's `input_shape`: (32, 32, 3) unless given or taken from `input_tensor`."""
    if input_shape is None and builder_kwargs.get("input_tensor") is None:
        return SMALL_INPUT_SHAPE
    return input_shape


def model_inputs(input_tensor, input_shape, default_shape=(224, 224, 3)):
    """The images input of a builder, as `keras.applications` picks it, and its shape.

    Args:
        input_tensor: None, or a `keras.Input(...)` tensor to build the model
            on (e.g. shared with another model). Tensors computed by other
            layers are refused: the model's config could not rebuild them.
        input_shape: None (`default_shape`, or the shape of `input_tensor`)
            or `(height, width, 3)`; must match `input_tensor` if both are given.
        default_shape: the builder's default input shape.

    Returns:
        `(inputs, input_shape)`: the `keras.Input` tensor and its shape as a tuple.
    """
    if input_tensor is None:
        shape = default_shape if input_shape is None else input_shape
        check_input_shape(shape)
        return keras.Input(shape=shape, name="images"), tuple(shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        raise ValueError(
            "input_tensor must be a Keras tensor made by keras.Input(shape=(height, width, 3)). "
            f"Received: input_tensor of type {type(input_tensor).__name__}"
        )
    source = producing_layer(input_tensor)
    if not isinstance(source, keras.layers.InputLayer):
        raise ValueError(
            "input_tensor must come straight from keras.Input: the model's config rebuilds "
            "its graph from the images input. Received: input_tensor, the output of layer "
            f"{source.name!r}. Put such layers in front of the model "
            "instead: model(layer(inputs))"
        )
    shape = tuple(input_tensor.shape[1:])
    if input_shape is not None and tuple(input_shape) != shape:
        raise ValueError(
            "input_shape must be None or the shape of input_tensor. "
            f"Received: input_shape={tuple(input_shape)}, input_tensor of shape {shape}"
        )
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(
            "input_tensor must have the shape (batch, height, width, 3) of RGB images. "
            f"Received: input_tensor of shape {tuple(input_tensor.shape)}"
        )
    return input_tensor, shape


def check_applications_arguments(include_top, weights, pooling, classifier_activation):
    """Validates the `keras.applications` arguments before a builder builds anything.

    Returns:
        `classifier_activation` in serialisable form (None, or its name).
    """
    from dmnn_keras.presets import is_preset  # the package imports this module

    if weights is not None and not (isinstance(weights, str) and (
            os.path.isfile(weights) or is_preset(weights))):
        raise ValueError(
            "weights must be None (random initialization), the path of an existing weights "
            "file (.weights.h5 or .keras), or a preset (a name in dmnn_keras.presets."
            f"list_presets() or a preset directory). Received: weights={weights!r}"
        )
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if include_top and pooling is not None:
        raise ValueError(
            "pooling applies with include_top=False (the top always average-pools). "
            f"Received: pooling={pooling!r} with include_top=True"
        )
    if classifier_activation is None:
        return None
    if not include_top:
        raise ValueError(
            "classifier_activation applies with include_top=True (the model has no classifier "
            f"without its top). Received: classifier_activation={classifier_activation!r} with "
            "include_top=False"
        )
    try:
        activation = keras.activations.get(classifier_activation)
    except (ValueError, TypeError):
        activation = None
    if activation is None:
        raise ValueError(
            "classifier_activation must be None (logits) or a Keras activation, e.g. "
            f"'softmax'. Received: classifier_activation={classifier_activation!r}"
        )
    return keras.activations.serialize(activation)


def load_builder_weights(model, weights, received=None, remedy=None):
    """Loads a builder's `weights` into `model`: a `.weights.h5`/`.keras` file, or a preset.

    A preset's weights are copied layer by layer (by name), so a model with
    the preset's architecture but `include_top=False` (or other `pooling`)
    takes its backbone, gates and controllers, as `keras.applications` loads
    its "notop" weights.

    Args:
        received: what the caller was given, for the error when the preset
            does not fit (default: `weights=<weights>`, the builders').
        remedy: what to do instead, for that error (default: the builders').
    """
    if os.path.isfile(weights):
        model.load_weights(weights)
        return
    from dmnn_keras.presets import from_preset

    source = from_preset(weights)
    source_layers = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        if not layer.weights:
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        source_layer = source_layers.get(layer.name)
        if source_layer is None or [tuple(w.shape) for w in source_layer.weights] != shapes:
            raise ValueError(
                f"{received or f'weights={weights!r}'} does not fit this model: the preset has "
                f"no layer {layer.name!r} with weights of shapes {shapes}. "
                + (remedy or "Build the model with the preset's architecture arguments (its "
                   "config.json), with include_top=False to leave out its classifier")
            )
        layer.set_weights(source_layer.get_weights())


def top_layers(x, include_top, pooling, num_classes, classifier_activation, dtype=None):
    """The top of a builder, as `keras.applications`: `avg_pool` + `predictions`, or `pooling`."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool", dtype=dtype)(x)
        return keras.layers.Dense(num_classes, activation=classifier_activation,
                                  name="predictions", dtype=dtype)(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool", dtype=dtype)(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool", dtype=dtype)(x)
    return x


def logits_tensor(model):
    """The symbolic logits of a functional model: its output, or the "logits" entry of a dict."""
    struct = model.output  # the functional model's outputs, nested as given to it
    if isinstance(struct, dict):
        return struct["logits"]
    if isinstance(struct, (list, tuple)):
        return struct[0]
    return struct


def check_distillation(model, weight, temperature):
    """Raises ValueError unless `model` outputs logits, `weight` >= 0 and `temperature` > 0."""
    activation = getattr(model, "classifier_activation", None)
    if activation is not None:
        raise ValueError(
            "distillation compares logits: the student must be built with "
            f"classifier_activation=None. Received: classifier_activation={activation!r}"
        )
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError(f"weight must be a number >= 0. Received: weight={weight!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or (
            not temperature > 0):
        raise ValueError(
            f"temperature must be a number > 0. Received: temperature={temperature!r}"
        )


class Distillation:
    """What `DynamicModel.distill_from` attaches: the teacher and the loss settings.

    A plain object (not a Keras layer), so the teacher is neither tracked,
    trained nor saved with the student.
    """

    def __init__(self, teacher, weight, temperature):
        self.teacher = teacher
        self.weight = float(weight)
        self.temperature = float(temperature)

    def teacher_logits(self, images):
        """The teacher's logits `[batch, classes]` on `images` (inference mode, no gradient)."""
        return ops.stop_gradient(ops.cast(self.teacher(images, training=False), "float32"))

    def loss_from(self, teacher_logits, student_logits):
        """`T^2 * KL(softmax(teacher / T) || softmax(student / T))`, batch mean (a scalar)."""
        t = self.temperature
        student_logits = ops.cast(student_logits, "float32")
        target = ops.softmax(teacher_logits / t, axis=-1)
        kl = ops.sum(
            target * (ops.log_softmax(teacher_logits / t, axis=-1)
                      - ops.log_softmax(student_logits / t, axis=-1)),
            axis=-1,
        )
        return t * t * ops.mean(kl)

    def loss(self, images, student_logits):
        """`loss_from` with the teacher run on `images`."""
        return self.loss_from(self.teacher_logits(images), student_logits)


class InPlaceDistillation(Distillation):
    """What `DynamicModel.distill_in_place` attaches: the model's own full network as teacher.

    Each training step runs the model a second time with every gate on
    (`all_gates_on`, training mode): that full network is trained on the
    labels, and its logits, without gradient, are the gated network's teacher.
    """

    def __init__(self, model, weight, temperature):
        super().__init__(None, weight, temperature)
        self.model = model

    def full_logits(self, images):
        """The full network's logits `[batch, classes]` on `images` (training mode, with gradient)."""
        from dmnn_keras.gates import all_gates_on

        with all_gates_on(self.model):
            outputs = self.model(images, training=True)
        return ops.cast(outputs["logits"] if isinstance(outputs, dict) else outputs, "float32")


DIFFICULTY_OUTPUT = "difficulty"  # the difficulty head's logits' key in the training outputs


def weighted_cross_entropy(labels, logits, sample_weight=None):
    """Sparse cross-entropy of `logits` `[batch, classes]`, weighted as the compiled loss: sum / batch."""
    values = keras.losses.sparse_categorical_crossentropy(
        labels, ops.cast(logits, "float32"), from_logits=True)
    if sample_weight is not None:
        values = values * ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
    return ops.mean(values)


class DynamicModel(keras.Model):
    """Base class of every dmnn_keras model (a functional `keras.Model`).

    Subclasses build their graph and call `super().__init__(inputs=...,
    outputs=..., category_loss_weights=...)`. With category supervision the
    graph's outputs are `{"logits": ..., "category_<i>": ...}`; in training
    `call` returns that dict and `compute_loss` adds the weighted
    cross-entropy of every controller's category head. In inference (`training`
    False or None) `call` returns only the logits, so `predict`, `evaluate` and
    export never see the category heads. A difficulty head
    (`GatingConfig.difficulty_head`) adds the entry `"difficulty"`, whose
    cross-entropy on the labels `compute_loss` adds with
    `difficulty_loss_weight`.

    Labels for category supervision: `y = {"label": [batch], "category":
    [batch]}` or `y = (label, category)`.

    Args:
        inputs: the `keras.Input` of images `[batch, H, W, 3]` (raw RGB pixels
            in [0, 255]; see `DynamicResNet` for what is checked where).
        outputs: logits `[batch, num_classes]`, or the dict above.
        category_loss_weights: one weight per category head (empty: none).
        difficulty_loss_weight: float >= 0, the weight of the difficulty
            head's loss (0 without one).
        dtype: None, or the dtype policy the subclass built every layer with
            (a name such as "mixed_bfloat16", or a `keras.DTypePolicy`); it
            becomes the model's `dtype_policy` and is kept in `get_config`.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Outputs: logits `[batch, num_classes]` (in training with category heads,
        the dict `{"logits", "category_0", ...}`, category logits
        `[batch, num_categories]`).

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.DMNNResNet()  # every builder returns a DynamicModel
    isinstance(model, dk.DynamicModel)  # True
    [controller.name for controller in model.controllers][0]  # 'conv2_block1_gate'
    model.resource_loss.name  # 'resource_loss'
    ```
    """

    def __init__(self, inputs, outputs, category_loss_weights=(), difficulty_loss_weight=0.0,
                 dtype=None, **kwargs):
        check_keyword_arguments(self, DynamicModel, kwargs, MODEL_ARGUMENTS)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.category_loss_weights = tuple(float(w) for w in category_loss_weights)
        self.difficulty_loss_weight = float(difficulty_loss_weight)
        self.distillation = None
        policy = model_dtype_policy(dtype)
        self._dtype_config = None if policy is None else keras.dtype_policies.serialize(policy)
        if policy is not None:  # as keras-hub's Backbone: the policy its layers were built with
            self.dtype_policy = policy

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' hook before the first step of `fit`, `evaluate`, `*_on_batch`: one trace, not two.

        Without a strategy too, the compiled metrics, losses and optimizer are
        built from the data's shapes first (`keras_compat.build_before_first_step`).
        """
        if not build_before_first_step(self, iterator, data_batch):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def distill_from(self, teacher, weight=1.0, temperature=4.0):
        """Adds knowledge distillation from `teacher` to the training loss (before `compile`/`fit`).

        The loss becomes `task loss + weight * T^2 * KL(p_teacher^T || p_student^T)`
        (Hinton et al.; `T = temperature`, `p^T` the softmax of logits / T),
        plus the resource loss as before. `weight=1` gives cross-entropy and
        distillation equal shares, LAUDNet's alpha = 0.5 up to a factor 2.
        The teacher runs in inference mode on the same (augmented) batch; it
        is not trained, tracked or saved: `model.save` writes the student
        only. Under a `tf.distribute` strategy, build or load the teacher in
        the strategy's scope. `distill_from(None)` removes it.

        Args:
            teacher: a Keras model `[batch, H, W, 3] -> [batch, num_classes]`
                logits with this model's number of classes, or None.
            weight: float >= 0 (0 leaves the loss exactly as without a teacher).
            temperature: float > 0.
        """
        if teacher is None:
            self.distillation = None
            return
        check_distillation(self, weight, temperature)
        classes = logits_tensor(self).shape[-1]
        teacher_classes = teacher.output_shape[-1]
        if teacher_classes != classes:
            raise ValueError(
                f"teacher must output {classes} logits like the student. Received: a teacher "
                f"with {teacher_classes} outputs"
            )
        self.distillation = Distillation(teacher, weight, temperature)

    def distill_in_place(self, weight=1.0, temperature=4.0):
        """Trains the gated network with in-place distillation from its own full network.

        The sandwich rule of slimmable networks (Yu & Huang 2019): every
        training step also runs this model with every gate on; that full
        network gets the task loss on the labels, and the gated network gets,
        besides its own task and resource losses,
        `weight * T^2 * KL(p_full^T || p_gated^T)` (as `distill_from`, with the
        full network's logits as a fixed target). The full network shares every
        weight, so no trained teacher is needed; a step costs about two. The
        full pass moves BatchNorm statistics too: recalibrate them with the
        inference gates after training (`recalibrate_batch_norm`, or the
        recipes' `calibrate_flops_batches`). Call before `compile`/`fit`;
        `distill_from(None)` removes it, and it is not saved.

        Args:
            weight: float >= 0, the distillation weight (the full network's
                task loss has weight 1).
            temperature: float > 0.
        """
        from dmnn_keras.gates import dmnn_gating

        dmnn_gating(self, "in-place distillation (all_gates_on)")
        check_distillation(self, weight, temperature)
        self.distillation = InPlaceDistillation(self, weight, temperature)

    # === Introspection ===
    @property
    def gated_blocks(self):
        """`[(controller, block)]` of every gated block, in order."""
        pairs = []
        for layer in self.layers:
            if getattr(layer, "gated", False):
                pairs.append((self.get_layer(layer.name + "_gate"), layer))
        return pairs

    @property
    def controllers(self):
        """Every gate controller layer, in order (DMNN's `GateController` and
        any layer marked `is_gate_controller = True`)."""
        return [
            layer for layer in self.layers
            if isinstance(layer, GateController) or getattr(layer, "is_gate_controller", False)
        ]

    @property
    def resource_loss(self):
        """The `ResourceLoss` layer, or None for a static model."""
        for layer in self.layers:
            if isinstance(layer, ResourceLoss):
                return layer
        return None

    @property
    def has_category_heads(self):
        return bool(self.category_loss_weights)

    # === Training ===
    def call(self, inputs, training=None, mask=None):
        outputs = super().call(inputs, training=training, mask=mask)
        if isinstance(outputs, dict) and not training:
            return outputs["logits"]
        return outputs

    def compute_output_spec(self, inputs, training=None, mask=None):
        spec = super().compute_output_spec(inputs, training=training, mask=mask)
        if isinstance(spec, dict) and not training:
            return spec["logits"]
        return spec

    @staticmethod
    def _split_labels(y):
        if isinstance(y, dict):
            return y["label"], y.get("category")
        if isinstance(y, (tuple, list)) and len(y) == 2:
            return y[0], y[1]
        return y, None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        labels, categories = self._split_labels(y)
        category_logits, difficulty_logits = [], None
        if isinstance(y_pred, dict):
            category_logits = [y_pred[f"category_{i}"] for i in range(len(self.category_loss_weights))]
            difficulty_logits = y_pred.get(DIFFICULTY_OUTPUT)
            y_pred = y_pred["logits"]
        loss = super().compute_loss(
            x=x, y=labels, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        if difficulty_logits is not None and self.difficulty_loss_weight:
            head_loss = self.difficulty_loss_weight * weighted_cross_entropy(
                labels, difficulty_logits, sample_weight)
            loss = loss + ops.cast(scale_additional_loss(self, head_loss), loss.dtype)
        if categories is not None and category_logits:
            category_loss = 0.0
            for weight, logits in zip(self.category_loss_weights, category_logits):
                cross_entropy = keras.losses.sparse_categorical_crossentropy(
                    categories, logits, from_logits=True
                )
                category_loss = category_loss + weight * ops.mean(cross_entropy)
            # Scaled per replica under tf.distribute, like every add_loss term.
            loss = loss + ops.cast(scale_additional_loss(self, category_loss), loss.dtype)
        if isinstance(self.distillation, InPlaceDistillation):
            if not training:  # evaluate: the gated network's own loss, no full pass
                return loss
            # After the task loss: the full pass clears the losses the gated pass added.
            full = self.distillation.full_logits(x)
            extra = weighted_cross_entropy(labels, full, sample_weight) + \
                self.distillation.weight * self.distillation.loss_from(
                ops.stop_gradient(full), y_pred)
            loss = loss + ops.cast(scale_additional_loss(self, extra), loss.dtype)
        elif self.distillation is not None and self.distillation.weight:
            distill = self.distillation.weight * self.distillation.loss(x, y_pred)
            loss = loss + ops.cast(scale_additional_loss(self, distill), loss.dtype)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        labels, _ = self._split_labels(y)
        if isinstance(y_pred, dict):
            y_pred = y_pred["logits"]
        return super().compute_metrics(x, labels, y_pred, sample_weight=sample_weight)

    def set_constructor_config(self, gating_config=None, **config):
        """Records the constructor arguments (returned by `get_config`) as attributes.

        `input_shape` is kept as `input_shape_` (Keras models own `input_shape`).
        `gating_config` (a `GatingConfig`) is kept as `gating_config` and its
        fields as entries of the config, flat as the constructor's keywords
        (the form models saved before `gating_config` existed have).
        """
        if gating_config is not None:
            self.gating_config = gating_config
            config.update(gating_config.get_config())
        self._constructor_config = dict(config)
        for key, value in config.items():
            setattr(self, "input_shape_" if key == "input_shape" else key, value)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "dtype": self._dtype_config,
                **self._constructor_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
