"""The README's Python snippets run (on a few batches, one epoch)."""

import os
import re

import pytest

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def snippet(marker):
    """The README's first Python snippet that contains `marker`."""
    snippets = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)
    return next(code for code in snippets if marker in code)


def run_shrunk(code, shrink):
    """Runs `code` with each key of `shrink` (which must occur in it) replaced; its namespace."""
    for old, new in shrink.items():
        assert old in code, old
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, README, "exec"), namespace)
    return namespace


@pytest.mark.skipif(not os.environ.get("TFDS_DATA_DIR"), reason="needs CIFAR-10 in TFDS_DATA_DIR")
def test_quickstart_and_export_snippets_run(tmp_path, monkeypatch):
    snippets = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)
    quickstart = snippets[0]
    export = next(code for code in snippets if "export.to_tflite" in code)
    shrink = {"epochs=5": "epochs=1", "training=True)": "training=True).take(2)",
              "training=False)": "training=False).take(1)", "test.take(2)": "test.take(1)"}
    code = quickstart + "\n" + export
    for old, new in shrink.items():
        assert old in code, old
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, README, "exec"), namespace)
    for name in ("dmnn.tflite", "dmnn_int8.tflite", "static.tflite", "dmnn_saved_model",
                 "dmnn_fixed.tflite"):
        assert (tmp_path / name).exists(), name
    assert 0 < namespace["dk"].profile(namespace["small"])["flops"]


@pytest.mark.skipif(not os.environ.get("TFDS_DATA_DIR"), reason="needs CIFAR-10 in TFDS_DATA_DIR")
def test_warm_start_snippet_runs():
    snippets = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)
    code = next(code for code in snippets if "from_static" in code)
    shrink = {"epochs=10": "epochs=1", "training=True)": "training=True).take(2)",
              "training=False)": "training=False).take(2)",
              "FlopsTargetSchedule(epochs=3,": "FlopsTargetSchedule(epochs=1,",
              "noise_off_epochs=2": "noise_off_epochs=1", "batches=20": "batches=1",
              "batches=10)": "batches=1)"}
    for old, new in shrink.items():
        assert old in code, old
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, README, "exec"), namespace)
    model = namespace["model"]
    assert model.get_layer("conv2_block1").groups == 2
    assert model.resource_loss.dual_step == 0.5
    # The annealing ends with the epoch, whose correction set the target from the measured gap.
    [(epoch, _, _, target, _)] = namespace["schedule"].corrections
    assert epoch == 0 and float(model.resource_loss.target.numpy()) == pytest.approx(target)



def test_mixed_precision_snippet_runs():
    snippets = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)
    code = next(code for code in snippets if "set_global_policy" in code)
    namespace = {}
    exec(compile(code, README, "exec"), namespace)
    keras = namespace["keras"]
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the snippet restores it
    assert namespace["model"].get_layer("conv1_conv").compute_dtype == "bfloat16"
    assert namespace["model"].get_layer("conv5_block3").paths[0][0].compute_dtype == "bfloat16"


@pytest.mark.skipif(not os.environ.get("TFDS_DATA_DIR"), reason="needs CIFAR-10 in TFDS_DATA_DIR")
def test_early_exit_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = run_shrunk(snippet("EarlyExitModel"), {
        "epochs=10": "epochs=1", "training=True)": "training=True).take(2)",
        "training=False)": "training=False).take(2)", "batches=20": "batches=2"})
    model, result = namespace["model"], namespace["calibration"].result
    assert model.exit_names == ("conv3_block1_exit", "conv4_block1_exit")
    assert model.confidence_threshold == pytest.approx(result["confidence_threshold"])
    assert result["images"] == 256 and (tmp_path / "exits.tflite").exists()
    # The teacher is a second copy: training moved the student's layers, not the teacher's.
    teacher = model.distillation.teacher
    assert not (teacher.get_layer("conv1_conv").kernel.numpy()
                == model.get_layer("conv1_conv").kernel.numpy()).all()


def test_preset_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = run_shrunk(snippet('dk.from_preset("dmnn_resnet_cifar10")'), {})
    model, backbone = namespace["model"], namespace["backbone"]
    assert (tmp_path / "my_preset" / "model.weights.h5").exists()
    assert tuple(backbone.output.shape) == (None, int(model.get_layer("avg_pool").output.shape[-1]))
    exits = namespace["exits"]
    assert type(exits).__name__ == "EarlyExitModel" and exits.get_layer("predictions").units == 3
