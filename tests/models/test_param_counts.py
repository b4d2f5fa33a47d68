"""Parameter and FLOPs counts of every named model, pinned against external facts."""

import numpy as np
import pytest

import dmnn_keras as dk


def trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("builder, params, gmacs", [
    (dk.ResNet50, 25_557_032, 4.089),
    (dk.ResNet101, 44_549_160, 7.801),
    (lambda: dk.MobileNetV2(alpha=1.0), 3_504_872, 0.301),
    (lambda: dk.MobileNetV2(alpha=1.4), 6_108_776, 0.582),
])
def test_static_models_match_the_references(builder, params, gmacs):
    model = builder()
    assert trainable(model) == params
    assert dk.profile(model)["flops"] / 1e9 == pytest.approx(gmacs, abs=0.001)


def test_dmnn_resnet50_keeps_resnet50_parameters_without_controllers():
    model = dk.DMNNResNet50(groups=4)
    report = dk.profile(model)
    backbone = report["params"] - report["controller_params"]
    assert abs(backbone / 25_557_032 - 1) < 0.03
    assert report["flops"] / 1e9 == pytest.approx(4.22, abs=0.01)
    assert len(model.gated_blocks) == 16


@pytest.mark.parametrize("alpha, params", [(1.0, 3_504_872), (1.4, 6_108_776)])
def test_dmnn_mobilenet_v2_keeps_parameters(alpha, params):
    report = dk.profile(dk.DMNNMobileNetV2(alpha=alpha, groups=4))
    backbone = report["params"] - report["controller_params"]
    # Only the per-path projection BatchNorms are added.
    assert 0 < backbone - params < 0.03 * params


def test_cifar_resnet50_costs_the_papers_033_gmacs():
    model = dk.ResNet50(input_shape=(32, 32, 3), num_classes=100)
    assert model.stem == "cifar"
    assert dk.profile(model)["flops"] / 1e9 == pytest.approx(0.33, abs=0.01)


def test_small_cpu_models_are_pinned():
    dmnn, static = dk.DMNNResNet(), dk.ResNet()
    assert dk.profile(dmnn)["params"] == 542_410
    assert dk.profile(dmnn)["flops"] == 8_236_288
    assert trainable(static) == 509_594
    assert dk.profile(static)["flops"] == 7_328_768
