"""recipes/train.py and evaluate.py end to end, flag errors, presets and the registry."""

import csv
import json
import os
import sys

import pytest
from absl import app

from dmnn_keras.training import MODELS, resolve_config
from dmnn_keras.training.presets import PRESETS, scaled_learning_rate
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipe_helpers import EVALUATE, TINY, TRAIN, load_recipe, run  # noqa: E402

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)

ARTEFACTS = ("model.keras", "config.json", "training_log.csv", "report.json", "logs",
             "flops_histogram.png", "execution_heatmap.png", "flops_extremes.png")
REPORT_KEYS = ("top1_error", "params", "flops", "executed_flops_mean", "flops_ratio",
               "execution_rates", "path_rates", "flags", "wall_time_seconds", "table_row")


def test_tiny_run_writes_every_artefact_and_evaluate_reproduces_it(tmp_path):
    out = tmp_path / "run"
    result = run([TRAIN, *TINY, f"--output_dir={out}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| dmnn_resnet |" in result.stdout and "Figure:" in result.stdout
    for name in ARTEFACTS:
        assert (out / name).exists(), name
    assert os.listdir(out / "logs"), "TensorBoard logs"
    assert not (out / "backup").exists() or not os.listdir(out / "backup")  # deleted when done
    report = json.loads((out / "report.json").read_text())
    for key in REPORT_KEYS:
        assert key in report, key
    assert report["eval_examples"] == 64
    assert report["flags"]["max_train_examples"] == 64 and report["flags"]["num_replicas"] == 1
    assert 0 < report["flops_ratio"] <= 1 and report["executed_flops_mean"] <= report["flops"]
    assert set(report["execution_rates"]) == {"conv2_block1", "conv3_block1", "conv4_block1",
                                              "conv5_block1"}
    assert abs(report["top1_error"] - 100 * (1 - report["top1_accuracy"])) < 1e-9
    rows = list(csv.DictReader(open(out / "training_log.csv")))
    assert [r["epoch"] for r in rows] == ["0"] and "flops_ratio" in rows[0]
    assert "NA" not in rows[0].values()  # no always-NA val_* columns
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "dmnn_resnet" and config["epochs"] == 1

    evaluated = run([EVALUATE, f"--model_path={out / 'model.keras'}", "--max_examples=64",
                     f"--output_dir={tmp_path / 'eval'}"])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads((tmp_path / "eval" / "report.json").read_text())
    # The same model on the same deterministic images: the same numbers.
    assert again["top1_error"] == pytest.approx(report["top1_error"])
    assert again["flops_ratio"] == pytest.approx(report["flops_ratio"])
    assert again["model"] == "dmnn_resnet"
    for name in ("flops_histogram.png", "execution_heatmap.png", "flops_extremes.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 1000
    # The all-on network of the same model (every sub-block on every image), with BatchNorm
    # statistics of its own.
    all_on = run([EVALUATE, f"--model_path={out / 'model.keras'}", "--max_examples=64",
                  "--force_gates=1", "--recalibrate_batches=1", "--figures=false"])
    assert all_on.returncode == 0, all_on.stderr[-3000:]
    forced = json.loads((out / "eval_gates_1_bn1" / "report.json").read_text())
    assert forced["flags"]["force_gates"] == 1.0 and forced["flags"]["recalibrate_batches"] == 1
    assert forced["recalibration_images"] == 250  # one training batch of --batch_size (250)
    assert forced["flops_ratio"] == 1.0 and set(forced["execution_rates"].values()) == {1.0}


def test_evaluate_takes_a_shipped_preset_and_writes_under_runs(tmp_path):
    from dmnn_keras.presets import load_metadata

    result = run([EVALUATE, "--model_path=dmnn_resnet_cifar10", "--max_examples=100",
                  "--batch_size=100", "--figures=false"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "runs" / "dmnn_resnet_cifar10" / "eval" /
                         "report.json").read_text())
    training = load_metadata("dmnn_resnet_cifar10")["training"]["config"]
    # The recipe that trained it comes from the preset's metadata, as train.py's config.json.
    assert report["model"] == training["model"] == "dmnn_resnet"
    assert report["flags"]["flops_target"] == training["flops_target"]
    assert report["eval_examples"] == 100 and 0.7 < report["top1_accuracy"] <= 1.0
    assert set(report["execution_rates"]) == {"conv2_block1", "conv3_block1", "conv4_block1",
                                              "conv5_block1"}


@pytest.mark.parametrize("flag, message", [
    ("--model=nope", "model must be one of"),
    ("--dataset=mnist", "Expected one of"),
    ("--dataset=folder:/does/not/exist", r"Received: name='folder:/does/not/exist' \(no such dir"),
    ("--strategy=horovod", "strategy must be one of"),
    ("--epochs=0", "epochs must be an int >= 1"),
    ("--stack_sizes=1,x,1,1", "stack_sizes must be comma-separated ints"),
    ("--groups=1,0,4,4", "groups must be an int >= 1 or one such int per stage"),
    ("--groups=1,1,4", r"groups must be an int or 4 ints \(one per stage of model='dmnn_resnet'\)"),
    ("--model=dmnn_mobilenet_v2 --groups=1,1,4,4", "groups must be an int or 7 ints"),
    ("--peer_timeout=0", r"peer_timeout must be a number of seconds > 0. Received: peer_timeout=0"),
])
def test_flag_errors_raise_usage_errors(flag, message):
    train = load_recipe(TRAIN, "recipes_train")

    train.FLAGS(["train.py"] + flag.split())
    try:
        with pytest.raises(app.UsageError, match=message):
            train.main(["train.py"])
    finally:
        train.FLAGS.unparse_flags()


def test_flag_error_exits_with_a_clear_message():
    result = run([TRAIN, "--model=nope"], timeout=120)
    assert result.returncode != 0
    assert "model must be one of" in result.stderr and "Received: model='nope'" in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "--helpfull" in lines[1], result.stderr[-3000:]  # not the whole help


def test_per_stage_groups_flag():
    train = load_recipe(TRAIN, "recipes_train")
    from dmnn_keras.training.registry import build_model

    try:
        train.FLAGS(["train.py", "--config=tiny", "--groups=1,2,4,4"])
        config = train.config_from_flags()
        train.FLAGS(["train.py", "--config=tiny", "--groups=2"])
        assert train.config_from_flags().groups == 2
    finally:
        train.FLAGS.unparse_flags()
    assert config.groups == (1, 2, 4, 4)
    model = build_model(config, 10, (32, 32, 3))
    assert [c.groups for c in model.controllers] == [1, 2, 4, 4]


def test_every_builder_is_registered_and_builds_from_its_flags():
    import keras

    for name in ("dmnn_resnet", "resnet", "dmnn_resnet50", "dmnn_resnet101", "resnet50",
                 "resnet101", "dmnn_mobilenet_v2", "dmnn_mobilenet_v2_140", "mobilenet_v2",
                 "mobilenet_v2_140"):
        assert name in MODELS
    from dmnn_keras.training.registry import build_model

    config = resolve_config("tiny", model="dmnn_mobilenet_v2_140", groups=2)
    model = build_model(config, 10, (32, 32, 3))
    assert model.alpha == 1.4 and model.groups == 2
    config = resolve_config("tiny", model="dmnn_resnet", stack_sizes=(1, 2, 1, 1),
                            width_multiplier=0.125, resource_loss_weight=8.0, flops_target=0.3)
    model = build_model(config, 10, (32, 32, 3), num_categories=2)
    assert model.stack_sizes == (1, 2, 1, 1) and model.resource_loss.loss_weight == 8.0
    assert model.resource_loss.flops_target == pytest.approx(0.3) and model.has_category_heads
    keras.backend.clear_session()
    for name, gating in (("aig_resnet", "aig"), ("channel_pruned_resnet", "channel"),
                         ("lcnet_resnet", "lcnet")):
        model = build_model(resolve_config("tiny", model=name, flops_target=0.7), 10, (32, 32, 3))
        assert model.gating == gating and model.groups == 1
        assert model.resource_loss.flops_target == pytest.approx(0.7)
    with pytest.raises(ValueError, match="category_supervision needs a DMNN"):
        build_model(resolve_config("tiny", model="aig_resnet"), 10, (32, 32, 3), num_categories=2)
    with pytest.raises(ValueError, match="stack_sizes applies to"):
        build_model(resolve_config("tiny", model="resnet50", stack_sizes=(1, 1, 1, 1)), 10, (32, 32, 3))


def test_presets_follow_the_papers():
    imagenet = resolve_config("imagenet", model="dmnn_mobilenet_v2")
    assert (imagenet.optimizer, imagenet.momentum, imagenet.batch_size, imagenet.epochs,
            imagenet.schedule) == ("nesterov", 0.9, 256, 120, "cosine")
    assert imagenet.weight_decay == 4e-5
    assert resolve_config("imagenet").weight_decay == 1e-4
    assert scaled_learning_rate(resolve_config("imagenet", batch_size=1024)) == pytest.approx(0.4)
    for name in ("cifar10", "cifar100"):
        cifar = resolve_config(name)
        assert (cifar.optimizer, cifar.weight_decay, cifar.batch_size, cifar.learning_rate,
                cifar.decay_epochs, cifar.epochs) == ("sgd", 1e-4, 256, 0.1, (100, 150), 200)
    default = resolve_config()
    assert default.config == "cpu" and default.model == "dmnn_resnet" and default.dataset == "cifar10"
    assert set(PRESETS) >= {"imagenet", "cifar10", "cifar100", "cpu", "tiny"}


def test_step_schedule_divides_by_ten_at_the_decay_epochs():
    from dmnn_keras.training.schedules import make_schedule

    schedule = make_schedule("step", 0.1, steps_per_epoch=10, epochs=200, decay_epochs=(100, 150))
    assert float(schedule(999)) == pytest.approx(0.1)
    assert float(schedule(1001)) == pytest.approx(0.01)
    assert float(schedule(1501)) == pytest.approx(0.001)
    cosine = make_schedule("cosine", 0.1, steps_per_epoch=10, epochs=10, warmup_epochs=1)
    assert float(cosine(0)) == pytest.approx(0.01) and float(cosine(10)) == pytest.approx(0.1)
    assert float(cosine(99)) < 0.001
