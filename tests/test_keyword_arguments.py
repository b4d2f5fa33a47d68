"""Unknown keyword arguments: a TypeError naming the argument and the closest valid name."""

import pytest

import dmnn_keras as dk

BUILDERS = (
    dk.DMNNResNet, dk.DMNNResNet50, dk.DMNNResNet101, dk.ResNet, dk.ResNet50, dk.ResNet101,
    dk.DynamicResNet, dk.DMNNMobileNetV2, dk.MobileNetV2, dk.DynamicMobileNetV2,
    dk.AIGResNet, dk.AIGResNet50, dk.AIGResNet101, dk.AIGMobileNetV2,
    dk.ChannelGatedResNet, dk.ChannelGatedResNet50, dk.ChannelGatedResNet101,
    dk.LCNetResNet, dk.LCNetResNet50, dk.LCNetResNet101,
)

# Each public layer with valid arguments; the test adds a typo.
LAYERS = (
    (dk.MultiPathBlock, dict(kind="bottleneck", filters=8, groups=2, path_width=4)),
    (dk.ChannelGatedBlock, dict(filters=32, width=8)),
    (dk.GateController, dict(groups=2)),
    (dk.AIGController, dict(groups=1)),
    (dk.ChannelGate, dict(groups=4)),
    (dk.LCController, dict(gate_groups=(8, 4))),
    (dk.GumbelGate, dict()),
    (dk.ResourceLoss, dict(flops_target=0.5, path_flops=[[1, 1]], always_on_flops=1)),
    (dk.TargetRateLoss, dict(flops_target=0.5, path_flops=[[1, 1]], always_on_flops=1)),
    (dk.BatchActivationLoss, dict(flops_target=0.5, path_flops=[[1, 1]], always_on_flops=1)),
)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_builder_typo_is_a_type_error_with_the_closest_name(builder):
    with pytest.raises(TypeError, match=r"'flops_targt' \(did you mean 'flops_target'\?\)"):
        builder(flops_targt=0.3)


def test_unknown_argument_without_a_close_name_lists_the_valid_ones():
    # An argument keras.applications does not have either: an error, not a silently ignored flag.
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'freeze_backbone'\. "
                                        r"Received: freeze_backbone=True\. Valid arguments: "
                                        r".*include_top.*pooling"):
        dk.DMNNResNet(include_top=False, freeze_backbone=True)
    with pytest.raises(TypeError, match="'foo'"):
        dk.DMNNResNet(foo=1)


def test_keras_model_arguments_still_pass():
    model = dk.ResNet(name="static", trainable=False)
    assert (model.name, model.trainable) == ("static", False)


def test_dynamic_model_rejects_unknown_arguments():
    model = dk.ResNet()
    with pytest.raises(TypeError, match="'nmae' \\(did you mean 'name'\\?\\)"):
        dk.DynamicModel(model.input, model.output, nmae="x")


@pytest.mark.parametrize("layer, kwargs", LAYERS, ids=lambda v: getattr(v, "__name__", ""))
def test_layer_typo_is_a_type_error_with_the_closest_name(layer, kwargs):
    # Keras' Layer.__init__ alone raises a ValueError without the hint.
    with pytest.raises(TypeError, match=rf"^{layer.__name__} got an unexpected keyword argument "
                                        r"'nmae' \(did you mean 'name'\?\)"):
        layer(**kwargs, nmae="x")
    assert layer(**kwargs, name="named", dtype="float32").name == "named"
