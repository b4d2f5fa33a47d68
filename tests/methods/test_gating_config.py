"""GatingConfig: one home of the gating arguments, as an object or as the constructors' keywords."""

import dataclasses
import inspect
import json

import keras
import pytest

import dmnn_keras as dk

TINY = dict(stack_sizes=(1, 1, 1, 1), width_multiplier=0.125, input_shape=(32, 32, 3),
            num_classes=10)


@pytest.mark.parametrize("model_class", [dk.DynamicResNet, dk.DynamicMobileNetV2])
def test_constructors_show_every_field_as_a_keyword_with_its_one_default(model_class):
    parameters = inspect.signature(model_class).parameters
    for field in dataclasses.fields(dk.GatingConfig):
        assert parameters[field.name].default == field.default, field.name
        assert parameters[field.name].kind is inspect.Parameter.KEYWORD_ONLY


# A config.json saved before gating_config existed (flat keywords): the dmnn_resnet_cifar10
# preset's as first shipped (row dmnn_lr10_t060_s0), kept here whichever preset ships.
FLAT_CONFIG = {
    "module": "dmnn_keras.models.resnet", "class_name": "DynamicResNet",
    "registered_name": "dmnn_keras>DynamicResNet",
    "config": {
        "name": "dmnn_resnet_cifar10", "trainable": True, "dtype": None,
        "stack_sizes": [1, 1, 1, 1], "width_multiplier": 0.25, "groups": 2,
        "split": "partition", "ungated_blocks": [], "num_classes": 10,
        "input_shape": [32, 32, 3], "include_top": True, "pooling": None,
        "classifier_activation": None, "stem": "cifar", "gating": "dmnn",
        "flops_target": 0.713, "resource_loss_weight": 2.0, "dual_step": 0.5,
        "rate_loss": "block", "num_categories": 0, "category_loss_weight": 0.0001,
        "use_previous_state": True, "controller_units": 32, "temperature": 1.0,
        "forced_gate_rate": None, "seed": 0, "dependent": True,
        "stochastic_inference": False, "one_sided": False,
    },
}


def test_a_config_saved_in_the_flat_form_still_loads_and_is_written_back_unchanged():
    saved = json.loads(json.dumps(FLAT_CONFIG))
    model = keras.saving.deserialize_keras_object(saved)
    assert model.gating_config == dk.GatingConfig(flops_target=0.713, dual_step=0.5, seed=0)
    written = json.loads(json.dumps(model.get_config()))
    assert {key: written[key] for key in saved["config"]} == saved["config"]
    # Fields added to GatingConfig since are written with their defaults.
    defaults = dk.GatingConfig().get_config()
    assert {key: written[key] for key in set(written) - set(saved["config"])} == {
        key: defaults[key] for key in set(written) - set(saved["config"])}


def test_config_object_keywords_and_dicts_build_the_same_model():
    config = dk.GatingConfig(flops_target=0.3, seed=0, rate_loss="gate")
    by_object = dk.DynamicResNet(gating_config=config, name="tiny", **TINY)
    by_keywords = dk.DynamicResNet(flops_target=0.3, seed=0, rate_loss="gate", name="tiny", **TINY)
    assert by_object.get_config() == by_keywords.get_config()
    assert by_object.gating_config == by_keywords.gating_config == config
    assert by_object.resource_loss.rate_loss == "gate"
    # What the constructors (and so `from_config`) do with `gating_config=` and the keywords:
    for form in (config, config.get_config(), keras.saving.serialize_keras_object(config)):
        assert dk.GatingConfig.from_keywords(form, {"name": "x"}) == (config, {"name": "x"})
    # A keyword replaces that field of the config.
    assert dk.GatingConfig.from_keywords(config, {"seed": 3})[0] == (
        dataclasses.replace(config, seed=3))


def test_builders_take_the_config_whole_but_keep_what_they_fix():
    config = dk.GatingConfig(gating="aig", flops_target=0.4)
    model = dk.AIGResNet(gating_config=config, width_multiplier=0.125)
    assert model.gating_config == config  # not the builder's controller_units=16
    with pytest.raises(ValueError, match=r"AIGResNet has gating='aig'\. "
                                         r"Received: gating_config with gating='dmnn'"):
        dk.AIGResNet(gating_config=dk.GatingConfig())


def test_from_static_takes_a_gating_config_under_its_own_flops_target():
    static = dk.ResNet(width_multiplier=0.125)
    model = dk.from_static(static, groups=2, flops_target=0.4,
                           gating_config=dk.GatingConfig(seed=5, dual_step=0.0))
    assert model.gating_config == dk.GatingConfig(flops_target=0.4, seed=5, dual_step=0.0)


@pytest.mark.parametrize("field, value, allowed", [
    ("flops_target", 0.0, r"a number in \(0, 1\]"),
    ("rate_loss", "flops", r"one of \('block', 'gate', 'bounded'\)"),
    ("controller_units", 2.5, "an int >= 1"),
    ("dependent", "yes", "True or False"),
    ("forced_gate_rate", 1.5, r"None or a number in \[0, 1\]"),
])
def test_bad_values_name_the_field_what_was_found_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ValueError, match=rf"^{field} must be {allowed}\. "
                                         rf"Received: {field}={value!r}$"):
        dk.GatingConfig(**{field: value})
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        dk.DynamicResNet(**{field: value}, **TINY)


def test_bad_gating_configs_say_what_is_allowed():
    with pytest.raises(ValueError, match="gating must be one of"):
        dk.GatingConfig(gating="skip")
    with pytest.raises(ValueError, match=r"gating_config has no field 'flops_targt'\. Allowed: "
                                         r"gating, flops_target"):
        dk.DynamicResNet(gating_config={"flops_targt": 0.3}, **TINY)
    with pytest.raises(ValueError, match=r"gating_config must be None, a dmnn_keras.GatingConfig "
                                         r"or a dict of its fields\. Received: gating_config of "
                                         r"type float"):
        dk.DynamicResNet(gating_config=0.3, **TINY)
    serialized_other = keras.saving.serialize_keras_object(keras.layers.Dense(2))
    with pytest.raises(ValueError, match=r"gating_config must deserialize to a GatingConfig\. "
                                         r"Received: a serialized Dense \('Dense'\)"):
        dk.DynamicResNet(gating_config=serialized_other, **TINY)
