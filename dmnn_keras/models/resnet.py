"""ResNet v1.5 (bottleneck) backbones, static or with DMNN multi-path blocks."""

import keras
from keras import layers

from dmnn_keras.keyword_arguments import MODEL_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.multi_path_block import (
    batch_norm_layer, bottleneck_path_width, conv_layer,
)
from dmnn_keras.methods import GatingConfig, with_gating_keywords
from dmnn_keras.models.builders import builder_doc, gating_defaults, make_builder
from dmnn_keras.models.dynamic_model import (
    DynamicModel, check_applications_arguments, load_builder_weights, model_dtype_policy,
    model_inputs, normalization_layer, top_layers,
)
from dmnn_keras.models.gating import (
    GateWiring, check_gating, check_ungated, is_ungated, stage_groups,
)

RESNET_STACKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
STEMS = ("imagenet", "cifar")


@keras.saving.register_keras_serializable(package="dmnn_keras")
class DynamicResNet(DynamicModel):
    """ResNet v1.5 with bottleneck blocks, each optionally a gated multi-path block.

    Stage s (s = 0..3) has `stack_sizes[s]` bottlenecks of width
    `64 * 2**s * width_multiplier` and `4x` that many output channels; the first
    block of stages 1-3 has stride 2 in its 3x3 convolution (v1.5). With
    `groups > 1` each bottleneck is split into `groups` sub-blocks: by default
    of the width that keeps the parameter count (`split="preserve"`, the
    paper's), or partitioning the static block's channels (`split="partition"`,
    which `dmnn_keras.from_static` can warm-start from a trained static twin),
    or `split="cross"`: those channels, with the 3x3's blocks between the
    sub-blocks that run together kept (every gate on: the static block); see
    `bottleneck_path_width`. The cross split's BatchNorms after the 3x3 and
    the last 1x1 normalise sums over the sub-blocks that run;
    `switchable_norms=True` gives each set of sub-blocks its own
    (`SwitchableBatchNorm`).

    Stems: "imagenet" = 7x7/2 conv + 3x3/2 max-pool (stage 0 at 1/4 of the
    input); "cifar" = 3x3/1 conv + 2x2/2 max-pool (stage 0 at 16x16 for a
    32x32 input, which gives ResNet-50 0.33 GMACs, the DMNN paper's CIFAR
    cost). `stem=None` picks "cifar" for inputs up to 64 pixels.

    Layer names: `normalize`, `conv1_conv`, `conv1_bn`, `conv1_relu`,
    `pool1_pool`, `conv{s+2}_block{b+1}` (blocks), `conv{s+2}_block{b+1}_gate`
    (their controllers), `avg_pool`, `predictions`, `resource_loss`.

    Args:
        stack_sizes: blocks per stage (4 stages).
        width_multiplier: float > 0 scaling every width.
        groups: sub-blocks per block (1 = the original ResNet block), or one
            int per stage, e.g. `(1, 1, 4, 4)`: whole-block gates in the two
            high-resolution stages, where narrow sub-blocks are slow per MAC in
            XNNPACK (BENCHMARKS.md, tflite_block_cost and tflite_latency).
            Gatings other than "dmnn" need groups=1.
        split: "preserve", "partition" or "cross" (see above; DMNN only).
        switchable_norms: `split="cross"` only: a BatchNorm per set of
            running sub-blocks (see above).
        ungated_blocks: blocks that always run whole (one path, no
            controller): a tuple of block names, e.g. `("conv2_block1",)`, or
            "first_of_stage" (ConvNet-AIG keeps the downsampling blocks on).
        num_classes: classes of the top (`keras.applications` calls it
            `classes`; here it is `num_classes`, as it always was).
        input_shape: None ((224, 224, 3), or the shape of `input_tensor`) or
            `(height, width, 3)`.
        include_top, weights, input_tensor, pooling, classifier_activation:
            as in `keras.applications`. `include_top=False` drops `avg_pool`
            and `predictions`: the output is the last feature map, or with
            `pooling="avg"`/`"max"` its global average/max `[batch, C]`, a
            backbone to nest in a user's model (its resource loss and FLOPs
            metrics reach the outer model's `fit`). `weights`: None or the
            path of a `.weights.h5` or `.keras` file of the same architecture,
            or a preset (`dmnn_keras.from_preset`'s names and directories;
            copied layer by layer, so `include_top=False` takes its backbone).
            `input_tensor`: a `keras.Input` tensor to build on (not the
            output of other layers). `classifier_activation`: None (logits,
            the default, unlike `keras.applications`), or e.g. "softmax";
            only with the top. Bad values or combinations raise ValueError.
        stem: None, "imagenet" or "cifar".
        gating_config: None (the defaults: "dmnn" gating), a `GatingConfig`
            or a dict of its fields: the gating method and its controller and
            loss options, documented there.
        dtype: None (the global policy, `keras.mixed_precision.set_global_policy`),
            or a dtype policy for every layer of this model: a name such as
            "mixed_bfloat16" or a `keras.DTypePolicy`. Convolutions then
            compute in bfloat16 with float32 weights; the gates, the
            resource loss and its metrics stay float32.
        **kwargs: each field of `GatingConfig` as a keyword argument (`gating`,
            `flops_target`, `seed`, ...; it replaces that field of
            `gating_config`), and Keras' `name` and `trainable`.

    Inputs: images `[batch, H, W, 3]` (`input_shape`), RGB, raw pixel values
        in [0, 255], any real dtype (cast to float32). The graph checks
        nothing: NaN/inf or 1-/4-channel images give meaningless outputs;
        `predict_gates`, `profile` and the other functions taking arrays
        check them first (`dmnn_keras.image_checks`).
    Outputs: logits `[batch, num_classes]` (probabilities with
        `classifier_activation="softmax"`); with `include_top=False` the last
        feature map `[batch, H / s, W / s, 2048 * width_multiplier]` (s = 16
        for the "cifar" stem, 32 for "imagenet"), `[batch, 2048 *
        width_multiplier]` with `pooling`. In training with
        `num_categories > 0`: a dict `{"logits", "category_0", ...}`.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import DynamicResNet
    model = DynamicResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25,
                          input_shape=(32, 32, 3), num_classes=10, groups=4)
    model(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 10)
    DynamicResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=(32, 32, 3),
                  include_top=False).output_shape  # (None, 2, 2, 512)
    DynamicResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=(32, 32, 3),
                  include_top=False, pooling="avg").output_shape  # (None, 512)
    ```
    """

    @with_gating_keywords
    def __init__(
        self,
        stack_sizes=(3, 4, 6, 3),
        width_multiplier=1.0,
        groups=4,
        split="preserve",
        switchable_norms=False,
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
        check_keyword_arguments(self, DynamicResNet, kwargs, MODEL_ARGUMENTS)
        method = check_gating(gating_config.gating, groups, "bottleneck", "DynamicResNet")
        if split == "cross" and gating_config.gating != "dmnn":
            raise ValueError("split='cross' ties each block's sub-blocks to DMNN gates: it needs "
                             f"gating='dmnn'. Received: gating={gating_config.gating!r}")
        if switchable_norms and split != "cross":
            raise ValueError("switchable_norms=True is for split='cross' (the split whose "
                             f"sub-blocks share BatchNorms). Received: split={split!r}")
        classifier_activation = check_applications_arguments(
            include_top, weights, pooling, classifier_activation)
        inputs, input_shape = model_inputs(input_tensor, input_shape)
        if len(stack_sizes) != 4 or any(int(n) < 1 for n in stack_sizes):
            raise ValueError(
                f"stack_sizes must be 4 ints >= 1. Received: stack_sizes={stack_sizes}"
            )
        if not width_multiplier > 0:
            raise ValueError(
                f"width_multiplier must be > 0. Received: width_multiplier={width_multiplier}"
            )
        if stem is None:
            stem = "cifar" if max(input_shape[:2]) <= 64 else "imagenet"
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS} or None. Received: stem={stem!r}")
        widths = [int(64 * 2**s * width_multiplier) for s in range(4)]
        per_stage = stage_groups(groups, len(widths))
        for width, g in zip(widths, per_stage):
            if width % g:
                raise ValueError(
                    f"groups must divide the bottleneck width of every stage {widths}. "
                    f"Received: groups={groups}"
                )

        # === Layers and functional model ===
        policy = model_dtype_policy(dtype)
        x = normalization_layer(policy)(inputs)
        stem_filters = int(64 * width_multiplier)
        if stem == "imagenet":
            x = conv_layer(stem_filters, 7, 2, "conv1_conv", policy)(x)
        else:
            x = conv_layer(stem_filters, 3, 1, "conv1_conv", policy)(x)
        x = batch_norm_layer("conv1_bn", policy)(x)
        x = layers.ReLU(name="conv1_relu", dtype=policy)(x)
        if stem == "imagenet":
            x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool",
                                    dtype=policy)(x)
        else:
            x = layers.MaxPooling2D(2, strides=2, name="pool1_pool", dtype=policy)(x)

        wiring = GateWiring(method, gating_config, dtype=policy)
        names = []
        for stage, (blocks, width) in enumerate(zip(stack_sizes, widths)):
            for b in range(int(blocks)):
                filters = 4 * width
                strides = 2 if (b == 0 and stage > 0) else 1
                in_channels = int(x.shape[-1])
                names.append(f"conv{stage + 2}_block{b + 1}")
                gate = not is_ungated(ungated_blocks, names[-1], b == 0)
                g = per_stage[stage] if gate else 1
                x = wiring.block(
                    x, stage, names[-1], gate=gate,
                    kind="bottleneck", filters=filters, groups=g,
                    path_width=bottleneck_path_width(in_channels, width, filters, g, split=split),
                    strides=strides, **({"cross": True, "switchable_norms": bool(switchable_norms)}
                                        if split == "cross" and gate and g > 1 else {}),
                )
                x = wiring.after_block(x, names[-1], num_classes, trained=include_top)
        check_ungated(ungated_blocks, names)
        wiring.check_difficulty_head(names)
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
            stack_sizes=tuple(int(n) for n in stack_sizes),
            width_multiplier=width_multiplier,
            groups=tuple(groups) if isinstance(groups, (list, tuple)) else groups,
            split=split,
            **({"switchable_norms": True} if switchable_norms else {}),  # (older configs: none)
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


CIFAR_RESNET = {"stack_sizes": (1, 1, 1, 1), "width_multiplier": 0.25, "input_shape": None,
                "num_classes": 10}  # the first arguments of the CIFAR-sized builders


def resnet_builder(name, module, fixed, parameters, depth=None, title="", about="",
                   described=None, defaults=None, returns="", example_args=None, gate_width=None,
                   kwargs_examples=None):
    """A public `DynamicResNet` builder, its docstring written from its data (see `make_builder`).

    Args:
        name, module, fixed, defaults: as `make_builder`.
        parameters: the builder's own arguments and defaults; the CIFAR-sized
            builders (`depth=None`) take `CIFAR_RESNET`'s first.
        depth: None (CIFAR-sized, any depth) or a key of `RESNET_STACKS`
            (224x224x3 and 1000 classes by default).
        title: the model's title, e.g. "ConvNet-AIG ResNet", the start of the
            docstring's first line.
        about, described: as `builder_doc`.
        returns: added to the docstring's Returns (e.g. the gates).
        example_args: the arguments of the docstring example's call (None:
            none for the CIFAR-sized builders, `parameters` for the others).
        gate_width: the example's gates per block (None: a static model).
        kwargs_examples: as `builder_doc` (None: `input_shape` and
            `num_classes` with `depth`, none without).

    Returns:
        The builder function.
    """
    small = depth is None
    if small:
        summary = f"{title} of any depth and width; defaults are a CPU-sized CIFAR model."
        parameters = {**CIFAR_RESNET, **parameters}
        check = ('dk.predict_gates(model, images)["conv2_block1"].shape  # '
                 f"(2, {gate_width})" if gate_width else "model.gated_blocks  # []")
        example = ["import numpy as np", "import dmnn_keras as dk",
                   f"model = dk.{name}({example_args or ''})",
                   'images = np.zeros((2, 32, 32, 3), "float32")',
                   "model(images).shape  # (2, 10)", check]
        returns = (": images `[batch, 32, 32, 3]` -> logits `[batch, 10]` with the defaults"
                   + returns)
    else:
        fixed = {"stack_sizes": RESNET_STACKS[depth], **fixed}
        summary = f"{title}-{depth} (224x224x3, 1000 classes by default)."
        if example_args is None:
            example_args = ", ".join(f"{key}={value!r}" for key, value in parameters.items())
        example = ["import dmnn_keras as dk", f"model = dk.{name}({example_args})",
                   "model.output_shape  # (None, 1000)"]
        returns = ": images `[batch, 224, 224, 3]` -> logits `[batch, 1000]` by default" + returns
        if kwargs_examples is None:
            kwargs_examples = ("input_shape", "num_classes")
    doc = builder_doc(summary, DynamicResNet, parameters, fixed, returns + ".", example, about,
                      described, defaults, small, kwargs_examples or ())
    return make_builder(name, module, DynamicResNet, parameters, fixed, doc, defaults, small)


def deep_resnet_builders(prefix, module, fixed, parameters, title, returns=None, **doc):
    """`resnet_builder` at each depth of `RESNET_STACKS`: `({prefix}50, {prefix}101)`.

    `returns`: None or `{depth: text}`; `doc`: the other `resnet_builder`
    arguments, the same at every depth.
    """
    return tuple(
        resnet_builder(f"{prefix}{depth}", module, fixed, parameters, depth, title,
                       returns=(returns or {}).get(depth, ""), **doc)
        for depth in RESNET_STACKS
    )


_DMNN = {"gating": "dmnn"}
DMNNResNet = resnet_builder(
    "DMNNResNet", __name__, _DMNN, {"groups": 4, **gating_defaults("flops_target")},
    title="DMNN ResNet",
    returns="; 542,410 trainable parameters, 4 gated blocks of 4 sub-blocks: gates `[batch, 4]` "
            "per block", gate_width=4)
ResNet = resnet_builder("ResNet", __name__, {"gating": None}, {"groups": 1}, title="Static ResNet",
                        about="The static twin of `DMNNResNet`: same code, gating off.",
                        returns="; no gates")
DMNNResNet50, DMNNResNet101 = deep_resnet_builders(
    "DMNNResNet", __name__, _DMNN, {"groups": 4, **gating_defaults("flops_target")}, "DMNN-ResNet",
    kwargs_examples=("input_shape", "num_classes", "num_categories"))
ResNet50, ResNet101 = deep_resnet_builders(
    "ResNet", __name__, {"groups": 1, "gating": None}, {}, "Static ResNet",
    returns={50: "; 25,557,032 parameters with 1000 classes",
             101: "; 44,549,160 parameters with 1000 classes"},
    kwargs_examples=("input_shape", "num_classes", "include_top"))
