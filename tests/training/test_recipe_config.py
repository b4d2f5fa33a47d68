"""The dynamic-network recipe's fields are checked by name before anything trains."""

import os

import pytest

import dmnn_keras as dk
from dmnn_keras.models.catalog import MODEL_SPECS
from dmnn_keras.training import resolve_config
from dmnn_keras.training.model_files import ModelFileError, load_model_or_preset
from dmnn_keras.training.registry import static_twin_name


@pytest.mark.parametrize("overrides, name", [
    (dict(block_split="thirds"), "block_split"),
    (dict(init_from="/nonexistent/model.keras"), "init_from"),
    (dict(teacher="/nonexistent/teacher.keras"), "teacher"),
    (dict(model="resnet", teacher_epochs=2), "model"),
    (dict(teacher_epochs=-1), "teacher_epochs"),
    (dict(target_schedule_epochs=9.0, epochs=4), "target_schedule_epochs"),
    (dict(noise_off_epochs=5, epochs=4), "noise_off_epochs"),
    (dict(start_temperature=5.0), "end_temperature"),
    (dict(distill_temperature=0.0), "distill_temperature"),
    (dict(model="resnet", noise_off_epochs=1), "noise_off_epochs"),
    (dict(teacher_epochs=2, strategy="multi_worker"), "teacher_epochs"),
    (dict(latency_images=-3), "latency_images"),
    (dict(target_correction_batches=2), "target_correction_batches"),  # no annealing to follow
    (dict(target_correction_batches=-1, target_schedule_epochs=1.0), "target_correction_batches"),
    (dict(model="resnet", target_correction_batches=2), "target_correction_batches"),
    (dict(correction_shifts_gates=True, target_correction_batches=0), "correction_shifts_gates"),
    (dict(correction_shifts_gates="yes"), "correction_shifts_gates"),
    (dict(gate_logit_bound=0.0), "gate_logit_bound"),
    (dict(model="resnet", gate_logit_bound=4.0), "gate_logit_bound"),
    (dict(gate_information_weight=-0.5), "gate_information_weight"),
    (dict(gate_information_weight="1"), "gate_information_weight"),
    (dict(model="resnet", gate_information_weight=0.5), "gate_information_weight"),
    (dict(forced_gate_rate=1.5), "forced_gate_rate"),
    (dict(forced_gate_rate=True), "forced_gate_rate"),
    (dict(model="resnet", forced_gate_rate=1.0), "forced_gate_rate"),
    (dict(model="aig_resnet", forced_gate_rate=1.0), "forced_gate_rate"),
    (dict(inplace_distill_weight=-1.0), "inplace_distill_weight"),
    (dict(model="resnet", inplace_distill_weight=1.0), "inplace_distill_weight"),
    (dict(model="aig_resnet", inplace_distill_weight=1.0), "inplace_distill_weight"),
    (dict(teacher_epochs=2, inplace_distill_weight=1.0), "inplace_distill_weight"),
    (dict(uncertainty_spread=-0.5), "uncertainty_spread"),
    (dict(model="resnet", uncertainty_spread=1.0), "uncertainty_spread"),
    (dict(model="aig_resnet", uncertainty_spread=1.0), "uncertainty_spread"),
    (dict(model="resnet", difficulty_head="conv3_block1"), "difficulty_head"),
    (dict(model="aig_resnet", difficulty_head="conv3_block1"), "difficulty_head"),
    (dict(difficulty_head=3), "difficulty_head"),  # "" is none (`--difficulty_head=`)
    (dict(early_exits=("conv3_block1",), calibrate_flops_batches=2), "early_exits"),  # gated
    (dict(model="resnet", early_exits="conv3_block1", calibrate_flops_batches=2), "early_exits"),
    (dict(model="resnet", early_exits=("conv3_block1",)), "calibrate_flops_batches"),
    (dict(model="resnet", early_exits=("conv3_block1",), calibrate_flops_batches=2,
          noise_off_epochs=1), "noise_off_epochs"),
    (dict(model="resnet", exit_loss_weight=-1.0), "exit_loss_weight"),
    (dict(model="resnet", calibrate_flops_batches=2), "calibrate_flops_batches"),  # no exits
    (dict(model="resnet", early_exits=("conv3_block1",), calibrate_flops_batches=2,
          category_supervision=True), "category_supervision"),
    (dict(compare_exits=("conv3_block1",), calibrate_flops_batches=2), "compare_exits"),  # no twin
    (dict(compare_exits="conv3_block1", teacher_epochs=2, calibrate_flops_batches=2),
     "compare_exits"),
    (dict(compare_exits=("conv3_block1",), teacher_epochs=2), "compare_exits"),  # no calibration
    (dict(fix_constant_gates=True), "fix_constant_gates"),  # no calibration batches
    (dict(fix_constant_gates=1, calibrate_flops_batches=2), "fix_constant_gates"),
    (dict(model="aig_resnet", fix_constant_gates=True), "fix_constant_gates"),
    (dict(model="resnet", fix_constant_gates=True), "fix_constant_gates"),
])
def test_bad_recipe_fields_name_themselves(overrides, name):
    with pytest.raises(ValueError, match=name):
        resolve_config("cpu_scratch", **overrides)


def test_static_twin_names():
    assert static_twin_name("dmnn_resnet") == "resnet"
    assert static_twin_name("dmnn_mobilenet_v2_140") == "mobilenet_v2_140"
    with pytest.raises(ValueError, match="DMNN model"):
        static_twin_name("aig_resnet")


def test_what_each_model_takes_comes_from_its_method_and_signature():
    specs = MODEL_SPECS
    assert {n for n, s in specs.items() if s.sized} == {
        "dmnn_resnet", "resnet", "aig_resnet", "channel_gated_resnet", "channel_pruned_resnet",
        "lcnet_resnet"}
    assert {n for n, s in specs.items() if s.width_arg == "alpha"} == {
        "dmnn_mobilenet_v2", "mobilenet_v2", "aig_mobilenet_v2"}
    assert [n for n, s in specs.items() if s.gated and s.multi_path] == [
        "dmnn_resnet", "dmnn_resnet50", "dmnn_resnet101", "dmnn_mobilenet_v2",
        "dmnn_mobilenet_v2_140"]


def test_main_job_preset_is_the_warm_start_recipe():
    config = resolve_config("cpu")
    assert config.teacher_epochs > 0 and config.block_split == "partition"
    assert config.model == "dmnn_resnet" and config.latency_images > 0
    with pytest.raises(ValueError, match="init_from"):  # the twin it trains is the init
        resolve_config("cpu", init_from=__file__)


def test_main_job_difficulty_head_is_for_resnet_dmnns_and_can_be_turned_off():
    for model in ("dmnn_resnet", "dmnn_resnet50"):  # both have a conv3_block1
        config = resolve_config("cpu", model=model)
        assert (config.difficulty_head, config.uncertainty_spread) == ("conv3_block1", 6.0)
    # MobileNetV2 has no conv3_block1: the preset leaves the head (and its spread) out ...
    config = resolve_config("cpu", model="dmnn_mobilenet_v2")
    assert (config.difficulty_head, config.uncertainty_spread) == (None, None)
    from dmnn_keras.training.registry import build_model

    assert build_model(config, 10, (32, 32, 3)).groups == 2  # conv3_block1 would not build
    # ... unless given; given empty (`--difficulty_head=`) there is none.
    config = resolve_config("cpu", model="dmnn_mobilenet_v2", difficulty_head="block_6")
    assert config.difficulty_head == "block_6"
    config = resolve_config("cpu", difficulty_head="", uncertainty_spread=0.0)
    assert (config.difficulty_head, config.uncertainty_spread) == (None, 0.0)
    assert resolve_config("cpu_scratch").difficulty_head is None  # only the main job's preset
    # run_training(config, **overrides) updates a resolved config: "none" stays none.
    from dmnn_keras.training.presets import update_config

    updated = update_config(config, epochs=1)
    assert (updated.difficulty_head, updated.uncertainty_spread, updated.epochs) == (None, 0.0, 1)
    assert update_config(resolve_config("cpu"), epochs=1).difficulty_head == "conv3_block1"
    # Another family's model: the main job's ResNet head goes, as resolve_config would leave it.
    mobilenet = update_config(resolve_config("cpu"), model="dmnn_mobilenet_v2")
    assert (mobilenet.difficulty_head, mobilenet.uncertainty_spread) == (None, None)
    assert build_model(mobilenet, 10, (32, 32, 3)).groups == 2
    assert update_config(mobilenet, model="dmnn_resnet").difficulty_head == "conv3_block1"
    kept = update_config(resolve_config("cpu"), model="dmnn_mobilenet_v2", difficulty_head="block_6")
    assert (kept.difficulty_head, kept.uncertainty_spread) == ("block_6", None)


def test_switchable_norms_are_for_the_cross_split():
    from dmnn_keras.layers import SwitchableBatchNorm
    from dmnn_keras.training.registry import build_model

    config = resolve_config("cpu_scratch", block_split="cross", switchable_norms=True, groups=2)
    model = build_model(config, 10, (32, 32, 3))
    assert isinstance(model.get_layer("conv3_block1").bn3, SwitchableBatchNorm)
    assert not resolve_config("cpu_scratch", block_split="cross").switchable_norms
    with pytest.raises(ValueError, match="switchable_norms=True needs block_split='cross'.*"
                                         "'partition'"):
        resolve_config("cpu", switchable_norms=True)
    with pytest.raises(ValueError, match="switchable_norms.*True or False"):
        resolve_config("cpu", block_split="cross", switchable_norms="yes")


def test_main_job_trains_the_cpu_exits_recipe_beside_its_dmnn():
    from dmnn_keras.training.run import exits_beside_config

    main = resolve_config("cpu", output_dir="runs/main")
    beside, exits = exits_beside_config(main), resolve_config("cpu_exits")
    assert beside.output_dir == "runs/main/exits" and beside.compare_exits == ()
    assert beside.model == exits.model == "resnet"
    for name in ("early_exits", "epochs", "learning_rate", "batch_size", "schedule",
                 "warmup_epochs", "weight_decay", "teacher_epochs", "teacher_learning_rate",
                 "distill_weight", "distill_temperature", "calibrate_flops_batches",
                 "max_train_examples", "latency_images", "target_schedule_epochs",
                 "noise_off_epochs", "target_correction_batches"):
        assert getattr(beside, name) == getattr(exits, name), name


def test_init_from_and_teacher_take_a_trained_preset_or_a_keras_file(tmp_path):
    preset_path = os.path.join(os.path.dirname(dk.__file__), "presets", "resnet_cifar10")
    config = resolve_config("cpu", teacher_epochs=0, compare_exits=(), init_from="resnet_cifar10",
                            teacher=preset_path)
    assert (config.init_from, config.teacher) == ("resnet_cifar10", preset_path)
    shipped = "dmnn_resnet_cifar10, exits_resnet_cifar10, resnet_cifar10"
    for name in ("init_from", "teacher"):
        with pytest.raises(ValueError, match=(
                rf"^{name} must be None, an existing .keras model file or a trained preset: a "
                rf"shipped preset's name \({shipped}\) or a directory written by "
                rf"dmnn_keras.save_to_preset. Received: {name}='resnet_cifar1'$")):
            resolve_config("cpu", teacher_epochs=0, compare_exits=(), **{name: "resnet_cifar1"})
    with pytest.raises(ModelFileError, match=(
            rf"^teacher must be an existing .keras file or a trained preset: a shipped preset's "
            rf"name \({shipped}\) .* Received: teacher='{tmp_path}/none.keras'$")):
        load_model_or_preset(str(tmp_path / "none.keras"), "teacher")
