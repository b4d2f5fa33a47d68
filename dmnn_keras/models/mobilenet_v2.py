"""MobileNetV2 backbones, static or with DMNN multi-path inverted residuals."""

import keras
from keras import layers

from dmnn_keras.keyword_arguments import MODEL_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.multi_path_block import batch_norm_layer, conv_layer
from dmnn_keras.methods import GatingConfig, with_gating_keywords
from dmnn_keras.models.builders import builder_doc, gating_defaults, make_builder
from dmnn_keras.models.dynamic_model import (
    DynamicModel, check_applications_arguments, load_builder_weights, model_dtype_policy,
    model_inputs, normalization_layer, top_layers,
)
from dmnn_keras.models.gating import (
    GateWiring, check_gating, check_ungated, is_ungated, stage_groups,
)

# (expansion t, output channels c, repeats n, first stride s), as in the paper.
MOBILENET_V2_SPEC = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
STEMS = ("imagenet", "cifar")


def make_divisible(value, divisor=8):
    """Rounds a channel count as MobileNetV2 does (multiple of 8, >= 90%)."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


@keras.saving.register_keras_serializable(package="dmnn_keras")
class DynamicMobileNetV2(DynamicModel):
    """MobileNetV2 whose inverted residuals are optionally gated multi-path blocks.

    Each block's expansion (ratio e) is split into `groups` sub-blocks of
    ratio e/groups, each with its own expansion, depthwise and projection
    convolutions, so parameters and FLOPs equal the original's (up to the
    projection BatchNorms). The first block (e = 1) has no expansion: its
    sub-blocks take channel slices of the input. Blocks without an identity
    shortcut always keep at least one sub-block on.

    Stems: "imagenet" = 3x3/2 stem (output stride 32); "cifar" = 3x3/1 stem and
    stride 1 in the second stage (output stride 8). `stem=None` picks "cifar"
    for inputs up to 64 pixels.

    Layer names: `normalize`, `stem_conv`, `stem_bn`, `stem_relu`, `block_{i}`
    and `block_{i}_gate` (i = 0..16), `head_conv`, `head_bn`, `head_relu`,
    `avg_pool`, `predictions`, `resource_loss`.

    Args:
        alpha: width multiplier, one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
        groups: sub-blocks per block; must divide every block's expanded
            channels (1 = the original block). Or one int per stage of
            `MOBILENET_V2_SPEC` (7 stages, 17 blocks), each dividing the
            expanded channels of its stage's blocks.
        gating_config: as `DynamicResNet`; its `gating` may be None, "dmnn" or
            "aig" (ConvNet-AIG gates every block that has an identity
            shortcut; blocks without one always run).
        Others as `DynamicResNet`.

    Inputs: images `[batch, H, W, 3]` (`input_shape`), RGB, raw pixel values
        in [0, 255], any real dtype (cast to float32). The graph checks
        nothing: NaN/inf or 1-/4-channel images give meaningless outputs;
        `predict_gates`, `profile` and the other functions taking arrays
        check them first (`dmnn_keras.image_checks`).
    Outputs: logits `[batch, num_classes]`; with `include_top=False` the
        head's feature map `[batch, H / s, W / s, 1280]` (s = 8 for the
        "cifar" stem, 32 for "imagenet"; `1280 * alpha` channels, rounded to a
        multiple of 8, when alpha > 1). In training with `num_categories > 0`:
        a dict `{"logits", "category_0", ...}`.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import DynamicMobileNetV2
    model = DynamicMobileNetV2(alpha=0.35, groups=2, input_shape=(32, 32, 3), num_classes=10)
    model(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 10)
    len(model.gated_blocks)  # 17
    ```
    """

    @with_gating_keywords
    def __init__(
        self,
        alpha=1.0,
        groups=4,
        ungated_blocks=(),
        num_classes=1000,
        input_shape=None,
        include_top=True,
        weights=None,
        input_tensor=None,
        pooling=None,
        classifier_activation=None,
        stem=None,
        gating_config=None,
        dtype=None,
        **kwargs,
    ):
        gating_config, kwargs = GatingConfig.from_keywords(gating_config, kwargs)
        check_keyword_arguments(self, DynamicMobileNetV2, kwargs, MODEL_ARGUMENTS)
        method = check_gating(gating_config.gating, groups, "inverted_residual",
                              "DynamicMobileNetV2")
        classifier_activation = check_applications_arguments(
            include_top, weights, pooling, classifier_activation)
        inputs, input_shape = model_inputs(input_tensor, input_shape)
        if alpha not in ALPHAS:
            raise ValueError(f"alpha must be one of {ALPHAS}. Received: alpha={alpha!r}")
        if stem is None:
            stem = "cifar" if max(input_shape[:2]) <= 64 else "imagenet"
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS} or None. Received: stem={stem!r}")

        # === Layers and functional model ===
        policy = model_dtype_policy(dtype)
        x = normalization_layer(policy)(inputs)
        x = conv_layer(make_divisible(32 * alpha), 3, 2 if stem == "imagenet" else 1,
                       "stem_conv", policy)(x)
        x = batch_norm_layer("stem_bn", policy)(x)
        x = layers.ReLU(6.0, name="stem_relu", dtype=policy)(x)

        wiring = GateWiring(method, gating_config, dtype=policy)
        per_stage = stage_groups(groups, len(MOBILENET_V2_SPEC))
        block_id, names = 0, []
        for stage, (t, c, n, s) in enumerate(MOBILENET_V2_SPEC):
            if stem == "cifar" and stage == 1:
                s = 1
            filters = make_divisible(c * alpha)
            for i in range(n):
                in_channels = int(x.shape[-1])
                expanded = in_channels * t
                if expanded % per_stage[stage]:
                    raise ValueError(
                        f"groups must divide the {expanded} expanded channels of block_{block_id}. "
                        f"Received: groups={groups}"
                    )
                names.append(f"block_{block_id}")
                gate = not is_ungated(ungated_blocks, names[-1], i == 0)
                g = per_stage[stage] if gate else 1
                x = wiring.block(
                    x, stage, names[-1], gate=gate,
                    kind="inverted_residual", filters=filters, groups=g,
                    path_width=expanded // g, strides=s if i == 0 else 1, expand=t != 1,
                )
                x = wiring.after_block(x, names[-1], num_classes, trained=include_top)
                block_id += 1
        check_ungated(ungated_blocks, names)
        wiring.check_difficulty_head(names)
        last_filters = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
        x = layers.Conv2D(last_filters, 1, use_bias=False, kernel_initializer="he_normal",
                          name="head_conv", dtype=policy)(x)
        x = batch_norm_layer("head_bn", policy)(x)
        x = layers.ReLU(6.0, name="head_relu", dtype=policy)(x)
        x = top_layers(x, include_top, pooling, num_classes, classifier_activation, policy)
        outputs = wiring.outputs(
            inputs, x, logits=include_top and classifier_activation is None)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            **wiring.loss_weights(),
            dtype=policy,
            **kwargs,
        )
        if weights is not None:
            load_builder_weights(self, weights)

        # === Config ===
        self.set_constructor_config(
            alpha=alpha,
            groups=tuple(groups) if isinstance(groups, (list, tuple)) else groups,
            ungated_blocks=ungated_blocks if isinstance(ungated_blocks, str) else tuple(
                ungated_blocks),
            num_classes=num_classes,
            input_shape=tuple(input_shape),
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            stem=stem,
            gating_config=gating_config,
        )


def mobilenet_v2_builder(name, module, fixed, parameters, summary, gated_blocks,
                         described=None, defaults=None, returns="", note=None):
    """A public `DynamicMobileNetV2` builder, its docstring written from its data.

    Args:
        name, module, fixed, parameters, defaults: as `make_builder`.
        summary, described: as `builder_doc`.
        gated_blocks: the gated blocks of the docstring example's model
            (alpha 0.35, 32x32 inputs, 10 classes).
        returns: added to the docstring's Returns.
        note: None, or a comment line of the example before its count of
            gated blocks.

    Returns:
        The builder function.
    """
    example = ["import numpy as np", "import dmnn_keras as dk",
               f"model = dk.{name}(alpha=0.35, input_shape=(32, 32, 3), num_classes=10)",
               'model(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 10)',
               *([note] if note else []), f"len(model.gated_blocks)  # {gated_blocks}"]
    returns = (f"{returns}: images `[batch, 224, 224, 3]` -> logits `[batch, 1000]` by default, "
               "`[batch, num_classes]` in general.")
    doc = builder_doc(summary, DynamicMobileNetV2, parameters, fixed, returns, example,
                      described=described, defaults=defaults,
                      kwargs_examples=("input_shape", "num_classes"))
    return make_builder(name, module, DynamicMobileNetV2, parameters, fixed, doc, defaults)


DMNNMobileNetV2 = mobilenet_v2_builder(
    "DMNNMobileNetV2", __name__, {"gating": "dmnn"},
    {"alpha": 1.0, "groups": 4, **gating_defaults("flops_target")},
    "DMNN-MobileNetV2 (224x224x3, 1000 classes by default).", gated_blocks=17)
MobileNetV2 = mobilenet_v2_builder(
    "MobileNetV2", __name__, {"groups": 1, "gating": None}, {"alpha": 1.0},
    "Static MobileNetV2 (3,504,872 parameters at alpha 1.0, 6,108,776 at 1.4).", gated_blocks=0,
    returns=" without gates")
