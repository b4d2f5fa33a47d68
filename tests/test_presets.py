"""Trained presets: the shipped ones reach their card's top-1; save_to_preset/from_preset round trip."""

import configparser
import fnmatch
import json
import os
import sys

import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.presets import list_presets, load_metadata
from dmnn_keras.training.model_files import load_model_or_preset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.make_presets import CHECK_IMAGES, first_test_images, top1  # noqa: E402

SHIPPED = {"dmnn_resnet_cifar10", "resnet_cifar10", "exits_resnet_cifar10"}


@pytest.mark.skipif(not os.environ.get("TFDS_DATA_DIR"), reason="needs CIFAR-10 in TFDS_DATA_DIR")
def test_shipped_presets_reach_the_top1_of_their_card():
    assert SHIPPED <= set(list_presets())
    images, labels = first_test_images()
    assert len(labels) == CHECK_IMAGES
    for name in list_presets():
        model, metadata = dk.from_preset(name), load_metadata(name)
        assert model.name == name and model.distillation is None  # no training machinery
        dynamic = model.get_config().get("gating") is not None or isinstance(
            model, dk.EarlyExitModel)
        assert dynamic == (metadata["twin"] is not None)  # a dynamic network names its twin
        card_top1 = metadata["metrics"]["top1_first_1000"]
        with open(os.path.join(dk.presets.PRESETS_DIR, name, "README.md")) as f:
            assert f"{100 * card_top1:.2f}%" in f.read()
        measured = top1(model(images, training=False).numpy(), labels)
        assert abs(measured - card_top1) <= 0.01, (name, measured, card_top1)


def test_round_trip_gives_the_same_outputs_and_gates(tmp_path):
    model = dk.DMNNResNet(groups=2, width_multiplier=0.125, seed=1)
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    directory = dk.save_to_preset(model, tmp_path / "tiny", card="A tiny test model.",
                                  metadata={"metrics": {"top1": 0.1}})
    assert sorted(os.listdir(directory)) == ["README.md", "config.json", "metadata.json",
                                             "model.weights.h5"]
    metadata = load_metadata(directory)
    assert metadata["parameter_count"] == model.count_params()
    assert metadata["metrics"] == {"top1": 0.1} and metadata["dmnn_keras_version"] == dk.__version__
    with open(os.path.join(directory, "config.json")) as f:
        assert "compile_config" not in json.load(f)
    with open(os.path.join(directory, "README.md")) as f:
        card = f.read()
    assert card.startswith("---\nlibrary_name: keras\n") and "A tiny test model." in card
    assert "dk.from_preset('tiny')" in card

    loaded = dk.from_preset(directory)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    # --init_from / --teacher take a preset as well as a .keras file.
    model.save(tmp_path / "tiny.keras")
    for path in (directory, tmp_path / "tiny.keras"):
        assert load_model_or_preset(path).get_config()["groups"] == model.get_config()["groups"]
    gates, logits = dk.predict_gates(model, images, return_logits=True)
    loaded_gates, loaded_logits = dk.predict_gates(loaded, images, return_logits=True)
    np.testing.assert_array_equal(loaded_logits, logits)
    assert gates.keys() == loaded_gates.keys()
    for block in gates:
        np.testing.assert_array_equal(loaded_gates[block], gates[block])


def test_from_preset_keywords_replace_its_constructor_arguments():
    """keras-hub's `from_preset(preset, **kwargs)`: the preset without its top is a backbone."""
    import keras

    preset = dk.from_preset("dmnn_resnet_cifar10")
    backbone = dk.from_preset("dmnn_resnet_cifar10", include_top=False, pooling="avg")
    assert type(backbone) is type(preset) and not backbone.get_config()["include_top"]
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    features = keras.Model(preset.input, preset.get_layer("avg_pool").output)(x)
    np.testing.assert_allclose(np.asarray(backbone(x)), np.asarray(features), rtol=1e-5, atol=1e-5)
    gates, expected = dk.predict_gates(backbone, x), dk.predict_gates(preset, x)
    for name in expected:
        np.testing.assert_array_equal(gates[name], expected[name])
    fresh = dk.from_preset("dmnn_resnet_cifar10", load_weights=False, num_classes=3)
    from dmnn_keras.models.dynamic_model import logits_tensor

    assert logits_tensor(fresh).shape[-1] == 3  # (a difficulty head's model: a dict output)
    with pytest.raises(ValueError, match=r"from_preset\('dmnn_resnet_cifar10', groups=4\) "
                                         r"does not fit this model: the preset has no layer "
                                         r"'\w+' with weights of shapes .*need load_weights=False$"):
        dk.from_preset("dmnn_resnet_cifar10", groups=4)
    with pytest.raises(ValueError, match=r"from_preset's keywords must be constructor arguments "
                                         r"of the preset \(\[.*'include_top'.*\]\)\. "
                                         r"Received: includ_top=False$"):
        dk.from_preset("dmnn_resnet_cifar10", includ_top=False)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_from_preset_with_another_class_count_makes_only_the_class_heads_new(name):
    """keras-hub's `from_preset(preset, num_classes=n)`: the preset's weights, new class heads."""
    preset = dk.from_preset(name)
    model = dk.from_preset(name, num_classes=3)
    assert type(model) is type(preset)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert model(x).shape == (2, 3)
    heads = {"predictions", "conv3_block1_difficulty", "conv3_block1_exit", "conv4_block1_exit"}
    weights = {v.path: v.numpy() for v in model.weights}
    new = {path.split("/")[0] for path, value in weights.items() if value.shape[-1:] == (3,)}
    assert new == {layer.name for layer in preset.layers} & heads  # every head of the preset
    for v in preset.weights:  # all but the heads and a DMNN's run state (as start_from)
        if v.path.split("/")[0] not in heads and not v.path.startswith("resource_loss/") and \
                not v.path.endswith(("temperature_value", "noise_scale")):
            np.testing.assert_array_equal(v.numpy(), weights[v.path], err_msg=v.path)
    with pytest.raises(ValueError, match=r"^num_classes must be an int >= 1. Received: "
                                         r"num_classes=0$"):
        dk.from_preset(name, num_classes=0)
    if name != "exits_resnet_cifar10":
        with pytest.raises(ValueError, match=r"Received: include_top=False, num_classes=3$"):
            dk.from_preset(name, include_top=False, pooling="avg", num_classes=3)


def test_unknown_preset_names_the_shipped_ones(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown preset 'dmnn_resnet_imagenet': the shipped "
                                         r"presets are \[.*'dmnn_resnet_cifar10'"):
        dk.from_preset("dmnn_resnet_imagenet")
    with pytest.raises(ValueError, match="is not a preset directory: it has no config.json"):
        dk.from_preset(tmp_path)


def test_shipped_preset_files_are_package_data():
    setup = configparser.ConfigParser()
    setup.read(os.path.join(ROOT, "setup.cfg"))
    patterns = setup["options.package_data"]["dmnn_keras"].replace(",", " ").split()
    package = os.path.join(ROOT, "dmnn_keras")
    for name in SHIPPED:
        for file in os.listdir(os.path.join(package, "presets", name)):
            path = f"presets/{name}/{file}"
            assert any(fnmatch.fnmatch(path, p) for p in patterns), path


def test_a_card_with_fixed_gates_gives_the_fixed_models_figures():
    """make_presets --fix_constant_gates: the card and metadata are the fixed model's, from fixed_gates."""
    from benchmarks.make_presets import card, fixed_metrics

    result = {"top1": 0.80, "macs": 4.4e6, "macs_ratio_to_twin": 0.6, "flops_ratio": 0.71,
              "latency_ratio_median": 0.92, "latency_ratio_mean": 0.95}
    fixed = {"reference": "static_s0", "fixed_gates": 4, "gates": 8, "top1_before": 0.80,
             "top1_after": 0.805, "macs_ratio_to_twin_before": 0.6,
             "macs_ratio_to_twin_after": 0.57, "latency_ratio_median_to_static_s0_before": 0.93,
             "latency_ratio_mean_to_static_s0_before": 0.96,
             "latency_ratio_median_to_static_s0_after": 0.85,
             "latency_ratio_mean_to_static_s0_after": 0.88}
    metrics = fixed_metrics("dmnn_x_s0", result, fixed)
    assert metrics == pytest.approx({"top1": 0.805, "macs": 4.18e6, "macs_ratio_to_twin": 0.57,
                                     "flops_ratio": 0.6745, "latency_ratio_median": 0.85,
                                     "latency_ratio_mean": 0.88})
    text = card("dmnn_x_s0", result, {**metrics, "top1_first_1000": 0.81}, {}, "a command",
                "resnet_cifar10", fixed)
    assert "| top-1, the 10,000 CIFAR-10 test images | 80.50% |" in text
    assert "(1 thread, learned gates, the constant ones fixed; median, mean) | 0.85x, 0.88x |" in text
    assert ("4 of its 8 gates are constants" in text and "--rows dmnn_x_s0" in text
            and "the row has 80.00% top-1 and TFLite latency 0.93x the twin's" in text)
    assert "constant ones fixed" not in card("dmnn_x_s0", result, {**result, "top1_first_1000": 0.81},
                                             {}, "a command", "resnet_cifar10")
    with pytest.raises(SystemExit, match=r"row dmnn_x_s0 is not in benchmarks/results/fixed_gates"
                                         r"\.json; run python -m benchmarks\.fixed_gates --rows "
                                         r"dmnn_x_s0"):
        fixed_metrics("dmnn_x_s0", result, None)
    with pytest.raises(SystemExit, match="twin is 'static_d2_s0'; .* against static_s0 only"):
        fixed_metrics("dmnn_x_s0", result, {**fixed, "reference": "static_d2_s0"})


def test_the_dmnn_preset_ships_with_its_constant_gates_fixed():
    """Its metadata's fixed gates are the ones the TFLite export knows (no IF op for them)."""
    from dmnn_keras.export.block_converters import known_gates

    recorded = load_metadata("dmnn_resnet_cifar10")["fixed_gates"]
    model = dk.from_preset("dmnn_resnet_cifar10")
    held = {block.name: list(known_gates(controller)) for controller, block in model.gated_blocks}
    assert held == recorded
    assert any(value is not None for values in held.values() for value in values)
