"""Fine-tuning on a folder of images (`dataset="folder:..."`, `init_from`) and the gates in TensorBoard."""

import dataclasses
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import dmnn_keras as dk
from dmnn_keras.training import run_training
from dmnn_keras.training import run as run_module
from dmnn_keras.training.callbacks import GATE_LOG_DIR, TENSORBOARD_DIR
from dmnn_keras.training.evaluation import evaluate_model

CLASSES = ("ant", "bee", "cat")
BLOCKS = ("conv2_block1", "conv3_block1", "conv4_block1", "conv5_block1")


def write_image_folder(root, classes=CLASSES, per_class=5, size=32):
    """`root/<class>/img_<i>.png`: 32x32 PNGs of constant value 10 * i + class index."""
    for label, name in enumerate(classes):
        os.makedirs(root / name)
        for i in range(per_class):
            image = np.full((size, size, 3), 10 * i + label, np.uint8)
            (root / name / f"img_{i}.png").write_bytes(tf.io.encode_png(image).numpy())


def read_events(log_dir):
    """`{tag: {step: numpy value}}` of every summary in a TensorBoard directory."""
    events = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                events.setdefault(value.tag, {})[event.step] = tf.make_ndarray(value.tensor)
    return events


def test_fine_tune_a_dmnn_on_an_image_folder_with_a_new_head_and_gate_logs(tmp_path, capsys,
                                                                           monkeypatch):
    root = tmp_path / "images"
    write_image_folder(root)
    init = dk.DMNNResNet(num_classes=10, groups=2, seed=0)
    # A trained controller in practice: conv3_block1 runs its second sub-block only, whatever the image.
    init.get_layer("conv3_block1_gate").logits_dense.bias.assign([-50.0, 50.0])
    init_path = str(tmp_path / "init.keras")
    init.save(init_path)
    out = tmp_path / "run"
    rewarded = []  # (gates set, weight) of run_training's reward_gate_information calls
    monkeypatch.setattr(run_module, "reward_gate_information", lambda model, weight: rewarded.append(
        (dk.reward_gate_information(model, weight), weight)))

    report = run_training("tiny", dataset=f"folder:{root}", init_from=init_path, image_size=32,
                          batch_size=4, epochs=2, output_dir=str(out), figures=False,
                          gate_information_weight=0.25)

    head = "predictions [(512, 10), (10,)] -> [(512, 3), (3,)]"
    assert f"init_from={init_path}: new {head}; every other weight kept" in capsys.readouterr().out
    assert report["init_from_replaced"] == {"predictions": head.split(" ", 1)[1]}
    # 4 of each class's 5 images train, the 5th is validation.
    assert report["steps_per_epoch"] == 3 and report["eval_examples"] == 3
    model = keras.models.load_model(out / "model.keras")
    assert model.output_shape == (None, 3)
    assert model.get_config()["groups"] == 2  # the init model's architecture, not the preset's 4
    assert report["execution_rates"]["conv3_block1"] == 0.5  # its controller was kept
    assert rewarded == [(len(BLOCKS), 0.25)]  # --gate_information_weight reached every gate
    assert "started_from" not in report  # a DMNN with a new head: nothing to compare with

    events = read_events(out / TENSORBOARD_DIR / GATE_LOG_DIR)
    assert set(events) == {f"execution_rate/{b}" for b in BLOCKS} | {"flops_ratio",
                                                                    "flops_ratio_per_image"}
    assert all(sorted(steps) == [0, 1] for steps in events.values())  # one point per epoch
    # The last epoch's logs are the trained model's gates on the same validation images.
    for block in BLOCKS:
        assert events[f"execution_rate/{block}"][1] == pytest.approx(
            report["execution_rates"][block])
    assert events["execution_rate/conv3_block1"][0] == 0.5
    assert events["flops_ratio"][1] == pytest.approx(report["flops_ratio"])
    histogram = events["flops_ratio_per_image"][1]  # [buckets, (left, right, count)]
    assert histogram[:, 2].sum() == 3
    percentiles = report["executed_flops_percentiles"]
    assert histogram[:, 0].min() == pytest.approx(percentiles["0"] / report["flops"])
    assert histogram[:, 1].max() == pytest.approx(percentiles["100"] / report["flops"])


def test_early_exits_fine_tune_from_a_static_model_and_meet_the_target(tmp_path):
    root = tmp_path / "images"
    write_image_folder(root, per_class=10)
    keras.utils.set_random_seed(0)
    init_path, teacher_path = str(tmp_path / "static.keras"), str(tmp_path / "static_preset")
    static = dk.ResNet(width_multiplier=0.125, input_shape=(32, 32, 3), num_classes=3)
    static.save(init_path)
    dk.save_to_preset(static, teacher_path)  # --teacher takes a preset as well as a .keras file

    report = run_training(
        "cpu_static", dataset=f"folder:{root}", init_from=init_path, teacher=teacher_path,
        image_size=32, batch_size=4, epochs=1, output_dir=str(tmp_path / "run"), figures=False,
        early_exits=("conv4_block1", "conv3_block1"), calibrate_flops_batches=6,
        flops_target=0.7, latency_images=6, verbose=0)

    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert isinstance(model, dk.EarlyExitModel)
    assert model.exit_names == ("conv3_block1_exit", "conv4_block1_exit")
    calibration = report["flops_calibration"]  # on the 24 training images
    assert calibration["images"] == 24
    assert float(model.exit_cascade.confidence_threshold.numpy()) == pytest.approx(
        calibration["confidence_threshold"])
    assert abs(calibration["flops_ratio"] - 0.7) <= 0.12  # 24 images: steps of 1/24 of an exit
    assert set(report["path_rates"]) == {"conv3_block1_exit", "conv4_block1_exit"}
    assert report["flops"] == dk.profile(model)["flops"]
    # Beside the static model it started from, on the same 6 validation images, and its latency.
    started_from = report["started_from"]
    assert started_from["model_path"] == init_path
    assert started_from["flops"] == dk.profile(static)["flops"]
    assert started_from["top1_accuracy"] == evaluate_model(static, f"folder:{root}",
                                                           image_size=32)["accuracy"]
    assert report["eval_examples"] == 6
    assert report["latency_vs_twin"]["images"] == 6


def test_early_exits_fine_tune_the_shipped_exits_preset_on_other_classes(tmp_path, capsys):
    root = tmp_path / "images"
    write_image_folder(root)
    report = run_training(
        "cpu_static", dataset=f"folder:{root}", init_from="exits_resnet_cifar10", image_size=32,
        batch_size=4, epochs=1, output_dir=str(tmp_path / "run"), figures=False,
        early_exits=("conv3_block1", "conv4_block1"), calibrate_flops_batches=1, verbose=1)
    heads = {"predictions": "[(512, 10), (10,)] -> [(512, 3), (3,)]",
             "conv3_block1_exit": "[(512, 10), (10,)] -> [(512, 3), (3,)]",
             "conv4_block1_exit": "[(1024, 10), (10,)] -> [(1024, 3), (3,)]"}
    printed = "".join(f"new {name} {shapes}; " for name, shapes in heads.items())
    assert (f"init_from=exits_resnet_cifar10: {printed}every other weight kept (backbone; the "
            f"exit heads start fresh)") in capsys.readouterr().out
    assert report["init_from_replaced"] == heads
    heads_of_exits = ("conv3_block1_exit", "conv4_block1_exit")
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert isinstance(model, dk.EarlyExitModel) and model.exit_names == heads_of_exits
    assert model(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 3)
    assert "started_from" not in report  # other classes: nothing to compare with
    # A teacher of other classes: the recipes' one-line error (a ModelFileError), before training.
    from dmnn_keras.training.model_files import ModelFileError

    with pytest.raises(ModelFileError, match=r"^teacher must output 3 logits like the student. "
                                             r"Received: a teacher with 10 outputs "
                                             r"\(teacher='resnet_cifar10'\)$"):
        run_training("cpu_static", dataset=f"folder:{root}", init_from="exits_resnet_cifar10",
                     teacher="resnet_cifar10", image_size=32, batch_size=4, epochs=1,
                     output_dir=str(tmp_path / "bad"), early_exits=("conv3_block1",),
                     calibrate_flops_batches=1, verbose=0)


def test_compare_exits_finds_the_exits_network_of_an_interrupted_main_job(tmp_path):
    from dmnn_keras.training import resolve_config
    from dmnn_keras.training.run import train_exits_beside

    config = resolve_config("cpu", output_dir=str(tmp_path / "run"))
    done = tmp_path / "run" / "exits"
    done.mkdir(parents=True)
    (done / "model.keras").write_bytes(b"trained before the interruption")
    report = dict(model="resnet", flags=dict(early_exits=["conv3_block1", "conv4_block1"],
                                             flops_target=0.5983),
                  top1_accuracy=0.719, flops=7_400_000, executed_flops_mean=4_470_000,
                  flops_ratio=0.604, total_train_images=500_000, total_train_seconds=633.0,
                  latency_vs_twin=dict(median_ratio=0.5, mean_ratio=0.62))
    (done / "report.json").write_text(json.dumps(report))
    # Found, not trained: no twin, strategy or data is touched.
    found = train_exits_beside(config, twin=None, strategy=None, flops_target=0.6)
    assert found == dict(output_dir=str(done), model="resnet",
                         early_exits=["conv3_block1", "conv4_block1"], flops_target=0.5983,
                         top1_accuracy=0.719, flops=7_400_000, executed_flops_mean=4_470_000,
                         flops_ratio=0.604, total_train_images=500_000,
                         total_train_seconds=633.0, latency_vs_twin=report["latency_vs_twin"])


def test_compare_exits_with_a_wrong_block_is_refused_by_name(tmp_path):
    from dmnn_keras.training import resolve_config
    from dmnn_keras.training.registry import build_model
    from dmnn_keras.training.run import exits_beside_config, exits_beside_target

    config = resolve_config("cpu", width_multiplier=0.125, output_dir=str(tmp_path / "run"))
    # The DMNN's executed MACs (0.71 of its own) as a share of the exits model's.
    dmnn = dk.profile(build_model(config, 10, (32, 32, 3)))["flops"]
    exits = dk.profile(dk.EarlyExitModel(build_model(exits_beside_config(config), 10, (32, 32, 3)),
                                         exits=config.compare_exits))["flops"]
    assert exits_beside_target(config, 10, (32, 32, 3)) == pytest.approx(0.71 * dmnn / exits,
                                                                          abs=1e-4)
    with pytest.raises(ValueError, match="compare_exits=\\('conv9_block1',\\) does not fit the "
                                         "twin 'resnet'"):
        exits_beside_target(dataclasses.replace(config, compare_exits=("conv9_block1",)), 10,
                            (32, 32, 3))
    with pytest.raises(ValueError, match="cannot run as few MACs as the DMNN: an image leaving "
                                         "at the first exit runs 0.509"):
        exits_beside_target(dataclasses.replace(config, flops_target=0.5), 10, (32, 32, 3))


def test_only_a_dynamic_run_from_a_static_model_on_its_classes_is_put_beside_it(tmp_path):
    from dmnn_keras.training.presets import resolve_config
    from dmnn_keras.training.run import static_start

    path = str(tmp_path / "static.keras")
    static = dk.ResNet(width_multiplier=0.125, input_shape=(32, 32, 3), num_classes=10)
    static.save(path)
    dmnn = dk.DMNNResNet(width_multiplier=0.125, groups=2, seed=0)
    config = resolve_config("tiny", init_from=path, max_eval_examples=8)
    assert static_start(config, static, {}, (32, 32, 3)) is None  # a static fine-tune
    assert static_start(config, dmnn, {"predictions": "..."}, (32, 32, 3)) is None  # a new head
    assert static_start(config, dmnn, {}, (64, 64, 3)) is None  # another image size
    assert static_start(dataclasses.replace(config, init_from=None), dmnn, {}, (32, 32, 3)) is None
    dmnn_path = str(tmp_path / "dmnn.keras")
    dmnn.save(dmnn_path)  # a gated init_from: it keeps its gates, no static model to compare
    assert static_start(dataclasses.replace(config, init_from=dmnn_path), dmnn, {},
                        (32, 32, 3)) is None
    given = static_start(config, dmnn, {}, (32, 32, 3))
    assert given["model_path"] == path and given["flops"] == dk.profile(static)["flops"]
    assert given["top1_accuracy"] == evaluate_model(static, "cifar10", max_examples=8)["accuracy"]


def test_a_missing_twin_is_named_as_the_run_knows_it(tmp_path):
    """The twin the run trained is `twin` in the error, one trained elsewhere `init_from`."""
    from dmnn_keras.training.model_files import ModelFileError
    from dmnn_keras.training.presets import resolve_config
    from dmnn_keras.training.run import latency_vs_twin

    root = tmp_path / "images"
    write_image_folder(root)
    config = resolve_config("tiny", dataset=f"folder:{root}", image_size=32, latency_images=2)
    gone = str(tmp_path / "gone.keras")
    for name in ("twin", "init_from"):
        with pytest.raises(ModelFileError, match=f"^{name} must be an existing .keras file or .*"
                                                 f"Received: {name}='{gone}'$"):
            latency_vs_twin(None, gone, config, name)
