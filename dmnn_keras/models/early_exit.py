"""`EarlyExitModel`: a static classifier with early exits; confident images stop early.

The other dynamic networks of the library skip parts of every block; an
early-exit network runs its backbone unchanged and stops it: after chosen
blocks a small classifier (an *exit*) answers, and an image whose answer is
confident enough leaves there (BranchyNet, Teerapittayanon et al. 2016; SDN,
Kaya et al. 2019). With every image going through, the network *is* the
backbone, so it can start from a trained static network and keep all of it.
"""

import keras
from keras import layers, ops

from dmnn_keras.flops import flops_table
from dmnn_keras.keras_compat import layer_calls, scale_additional_loss
from dmnn_keras.keyword_arguments import MODEL_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.exit_cascade import ExitCascade
from dmnn_keras.models.dynamic_model import DynamicModel

EXIT_SUFFIX = "_exit"


def _check_backbone(backbone):
    if isinstance(backbone, dict):
        backbone = keras.saving.deserialize_keras_object(backbone)
    if not isinstance(backbone, keras.Model) or not hasattr(backbone, "operations"):
        raise ValueError("backbone must be a functional Keras classifier. "
                         f"Received: {type(backbone).__name__}")
    if getattr(backbone, "gated_blocks", None) or isinstance(backbone, EarlyExitModel):
        raise ValueError("backbone must be a static network (early exits stop a network that "
                         f"runs every block). Received: {backbone.name!r}, a dynamic model")
    if len(backbone.inputs) != 1:
        raise ValueError("backbone must take one image input. Received: "
                         f"{len(backbone.inputs)} inputs")
    if len(backbone.outputs) != 1 or len(backbone.outputs[0].shape) != 2:
        raise ValueError("backbone must output one logits tensor [batch, classes]. Received "
                         f"outputs of shapes {[tuple(t.shape) for t in backbone.outputs]}")
    activation = getattr(backbone, "classifier_activation", None)
    last = backbone.layers[-1]  # a plain functional model: its output layer's activation
    if activation is None and isinstance(last, keras.layers.Softmax):
        activation = "softmax"
    elif activation is None and getattr(last, "activation", None) is not None:
        activation = None if last.activation.__name__ == "linear" else last.activation.__name__
    if activation is not None:
        raise ValueError("backbone must output logits (classifier_activation=None): the exits "
                         f"compare softmax confidences. Received: classifier_activation={activation!r}")
    return backbone


def _backbone_config(backbone):
    """The backbone's serialized config, without its compile settings (the model is saved whole)."""
    config = keras.saving.serialize_keras_object(backbone)
    config.pop("compile_config", None)
    return config


def _exit_features(backbone, exits):
    """The blocks' output tensors, in network order; ValueError for a bad name."""
    if isinstance(exits, str) or not isinstance(exits, (list, tuple)) or not exits:
        raise ValueError("exits must be a non-empty tuple of layer names of the backbone. "
                         f"Received: exits={exits!r}")
    exits = tuple(exits)
    order = [layer.name for layer in backbone.layers]
    unknown = [name for name in exits if name not in order]
    if unknown:
        raise ValueError(f"exits names layers the backbone does not have: {unknown}. Allowed: "
                         f"its 4D feature layers, e.g. {[n for n in order if 'block' in n][:8]}")
    if len(set(exits)) != len(exits):
        raise ValueError(f"exits must not repeat a layer. Received: exits={tuple(exits)}")
    names = sorted(exits, key=order.index)
    tensors = [backbone.get_layer(name).output for name in names]
    for name, tensor in zip(names, tensors):
        if len(tensor.shape) != 4:
            raise ValueError(f"exits must name layers with [batch, H, W, C] outputs. Received: "
                             f"{name!r} with output shape {tuple(tensor.shape)}")
    return names, tensors


def exit_head(features, name, num_classes, grid, dtype=None, suffix=EXIT_SUFFIX):
    """Average-pools `features` `[batch, H, W, C]` to `grid x grid`, then a Dense: logits `[batch, classes]`.

    Its layers are `{name}{suffix}_pool`, `{name}{suffix}_flatten` and `{name}{suffix}`.
    """
    height, width = int(features.shape[1]), int(features.shape[2])
    if height % grid or width % grid:
        raise ValueError(f"grid must divide the exit's feature map. Received: grid={grid} for "
                         f"{name!r} of {height}x{width}")
    x = layers.AveragePooling2D((height // grid, width // grid), name=f"{name}{suffix}_pool",
                                dtype=dtype)(features)
    x = layers.Flatten(name=f"{name}{suffix}_flatten", dtype=dtype)(x)
    return layers.Dense(num_classes, name=f"{name}{suffix}", dtype=dtype)(x)


@keras.saving.register_keras_serializable(package="dmnn_keras")
class EarlyExitModel(DynamicModel):
    """A static classifier with exits after chosen blocks; each image stops at the first confident one.

    Built on `backbone`'s own layers (its weights are shared, not copied).
    After each block in `exits` an exit head (`exit_head`: average pool to
    `grid x grid`, Dense) gives logits. In inference the `ExitCascade` layer
    answers each image with the first exit whose top softmax probability is
    >= `confidence_threshold`, else with the backbone's classifier. Keras
    computes every exit for every image; the TFLite export
    (`dmnn_keras.to_tflite`) runs each further segment inside a `tf.cond`, so
    an image that leaves early costs only the MACs before its exit.

    Training (`fit`): the loss is the compiled loss on the final logits plus
    `exit_loss_weight` times the compiled loss on every exit's logits; with
    `distill_from(teacher)` every exit and the final classifier are also
    distilled from the teacher (its logits computed once per batch). The
    confidence threshold is not trained: `dmnn_keras.calibrate_flops(model,
    images, target)` sets it so the mean MACs meet a share of the full
    network's.

    MACs: `dmnn_keras.profile` and the export count per image the MACs up to
    the exit it leaves at, heads included. In the FLOPs table every exit is a
    gated block named after it (`<block>_exit`): its gate `[batch, 1]` is 1
    when the image goes on past the exit, and its MACs are the segment up to
    the next exit (or the classifier). So `path_rates["conv3_block1_exit"]`
    is the share of images that went on past that exit.

    Args:
        backbone: a static functional classifier that outputs logits (e.g.
            `dmnn_keras.ResNet(...)`), or its serialized config.
        exits: names of the backbone layers to attach exits after (outputs
            `[batch, H, W, C]`), any order.
        grid: the exit heads' pooled grid (an int dividing each map's H and W).
        exit_loss_weight: float >= 0, the weight of every exit's loss (and
            distillation) against the final classifier's 1.
        confidence_threshold: the initial threshold, in [0, 1].
        **kwargs: `name`, `trainable`.

    Outputs: logits `[batch, classes]` (in training the dict `{"logits":
    final logits, "<block>_exit": exit logits, ...}`).

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    backbone = dk.ResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=(32, 32, 3),
                         num_classes=10)
    model = dk.EarlyExitModel(backbone, exits=("conv3_block1", "conv4_block1"))
    model.exit_names  # ('conv3_block1_exit', 'conv4_block1_exit')
    model(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 10)
    ```
    """

    def __init__(self, backbone, exits=("conv3_block1", "conv4_block1"), grid=2,
                 exit_loss_weight=1.0, confidence_threshold=0.9, **kwargs):
        check_keyword_arguments(self, EarlyExitModel, kwargs, MODEL_ARGUMENTS)
        backbone = _check_backbone(backbone)
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise ValueError(f"grid must be an int >= 1. Received: grid={grid!r}")
        if isinstance(exit_loss_weight, bool) or not isinstance(
                exit_loss_weight, (int, float)) or not exit_loss_weight >= 0:
            raise ValueError("exit_loss_weight must be a number >= 0. "
                             f"Received: exit_loss_weight={exit_loss_weight!r}")
        names, features = _exit_features(backbone, exits)
        final = backbone.outputs[0]
        num_classes = int(final.shape[-1])
        policy = backbone.dtype_policy  # the heads compute as the backbone does
        exit_logits = [exit_head(x, name, num_classes, grid, policy)
                       for name, x in zip(names, features)]
        cascade = ExitCascade(confidence_threshold, name="exit_cascade", dtype=policy)
        logits, _ = cascade(exit_logits + [final])
        outputs = {"logits": logits}
        outputs.update({name + EXIT_SUFFIX: t for name, t in zip(names, exit_logits)})
        kwargs.setdefault("name", f"{backbone.name}_exits")
        super().__init__(inputs=backbone.inputs[0], outputs=outputs, **kwargs)
        self.exit_names = tuple(name + EXIT_SUFFIX for name in names)
        self.exit_loss_weight = float(exit_loss_weight)
        self.set_constructor_config(
            backbone=_backbone_config(backbone), exits=tuple(names), grid=grid,
            exit_loss_weight=float(exit_loss_weight), confidence_threshold=float(confidence_threshold))

    @property
    def exit_cascade(self):
        return self.get_layer("exit_cascade")

    def exit_logits_tensors(self):
        """The symbolic logits of every exit and then of the final classifier (the cascade's inputs)."""
        [(inputs, _)] = layer_calls(self.exit_cascade)
        return list(inputs)

    # === Hooks the library's gate-level tools call (see dmnn_keras.gates, .flops, .export) ===
    def build_gate_probe(self):
        """`(probe, names)`: `images -> [logits, gates_1, ..., gates_E]`, each gate `[batch, 1]`."""
        [(_, (logits, gates))] = layer_calls(self.exit_cascade)
        columns = [layers.Lambda(lambda g, k=k: g[:, k:k + 1], name=f"{name}_gate")(gates)
                   for k, name in enumerate(self.exit_names)]
        return keras.Model(self.inputs[0], [logits] + columns), list(self.exit_names)

    def build_flops_table(self):
        """The FLOPs table: `always_on` up to the first exit's logits, one block per exit after it."""
        heads = self.exit_logits_tensors()
        reached = [flops_table(self.inputs[0], heads[:k + 1])["always_on"] for k in range(len(heads))]
        blocks = [{"name": name, "paths": [reached[k + 1] - reached[k]]}
                  for k, name in enumerate(self.exit_names)]
        return {"always_on": reached[0], "blocks": blocks}

    # === Training ===
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        exits = []
        if isinstance(y_pred, dict):
            exits = [y_pred[name] for name in self.exit_names]
            y_pred = y_pred["logits"]
        loss = keras.Model.compute_loss(
            self, x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        distill = self.distillation if self.distillation is not None and \
            self.distillation.weight else None
        teacher = distill.teacher_logits(x) if distill else None
        extra = 0.0
        if distill:
            extra = extra + distill.weight * distill.loss_from(teacher, y_pred)
        for logits in exits:
            term = self.exit_task_loss(y, logits, sample_weight)
            if distill:
                term = term + distill.weight * distill.loss_from(teacher, logits)
            extra = extra + self.exit_loss_weight * term
        if distill or exits:
            loss = loss + ops.cast(scale_additional_loss(self, extra), loss.dtype)
        return loss

    def exit_task_loss(self, y, logits, sample_weight=None):
        """The compiled loss on one exit's logits, weighted and reduced as Keras does the final one.

        A `keras.losses.Loss` is called as is; a loss function (e.g. the string
        "sparse_categorical_crossentropy") is averaged over the batch
        ("sum_over_batch_size", `compile`'s default).
        """
        loss = self.loss
        if isinstance(loss, str) or (callable(loss) and not isinstance(loss, keras.losses.Loss)):
            function = keras.losses.get(loss)
            values = ops.cast(function(y, logits), "float32")
            if sample_weight is not None:
                values = values * ops.cast(ops.reshape(sample_weight, ops.shape(values)), "float32")
            return ops.sum(values) / ops.cast(ops.shape(values)[0], "float32")
        if not isinstance(loss, keras.losses.Loss):
            raise ValueError("EarlyExitModel trains every exit with the compiled loss: compile it "
                             "with one loss (a keras.losses.Loss, a loss function or its name). "
                             f"Received: loss={loss!r}")
        return ops.cast(loss(y, logits, sample_weight=sample_weight), "float32")

    @property
    def confidence_threshold(self):
        """The exits' current confidence threshold (the `ExitCascade` weight); settable."""
        return float(keras.ops.convert_to_numpy(self.exit_cascade.confidence_threshold))

    @confidence_threshold.setter
    def confidence_threshold(self, value):
        self.exit_cascade.set_threshold(value)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._constructor_config}

