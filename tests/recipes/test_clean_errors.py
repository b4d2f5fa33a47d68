"""Recipe errors are one line on stderr (no traceback, no TensorFlow start-up logs), exit code 1."""

import os
import subprocess
import sys
import zipfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipe_helpers import EVALUATE, REPO, env  # noqa: E402

PREDICT = os.path.join(REPO, "recipes", "predict.py")


def run_loud(args):
    """A recipe run with TensorFlow's own log level left unset, as a user runs it."""
    environment = env()
    del environment["TF_CPP_MIN_LOG_LEVEL"]
    return subprocess.run([sys.executable] + args, capture_output=True, text=True,
                          env=environment, timeout=240, cwd=REPO)


def assert_one_line_error(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]  # no traceback, no cuInit / oneDNN lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_truncated_keras_archive_is_named_as_such(tmp_path):
    archive = tmp_path / "model.keras"
    with zipfile.ZipFile(archive, "w") as f:
        f.writestr("config.json", "{}")
        f.writestr("model.weights.h5", b"\0" * 4096)
    archive.write_bytes(archive.read_bytes()[:3000])  # cut off, like an interrupted copy
    result = run_loud([EVALUATE, f"--model_path={archive}"])
    assert_one_line_error(result, str(archive), "not a valid .keras archive: truncated or corrupt?")


def fake_tflite(tmp_path):
    """Bytes with the TFLite file identifier: passes the file check, never reaches LiteRT here."""
    path = tmp_path / "m.tflite"
    path.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 64)
    return path


@pytest.mark.parametrize("case", ["keras_model", "undecodable_image", "missing_image"])
def test_predict_input_errors_say_what_to_do(tmp_path, case):
    image = tmp_path / "cat.jpg"
    image.write_text("not an image")
    model = fake_tflite(tmp_path)
    if case == "keras_model":
        model = tmp_path / "model.keras"
        with zipfile.ZipFile(model, "w") as f:
            f.writestr("config.json", "{}")
        expected = (str(model), "is a .keras model", "dk.export.to_tflite(", "model.tflite")
    elif case == "undecodable_image":
        expected = (f"cannot decode {image} as an image", "JPEG, PNG, GIF")
    else:
        image = tmp_path / "missing.jpg"
        expected = ("--image must be an existing file", str(image))
    result = run_loud([PREDICT, f"--model={model}", f"--image={image}"])
    assert_one_line_error(result, *expected)


def test_forcing_the_gates_of_a_static_model_is_refused_by_name(tmp_path):
    import keras

    model = tmp_path / "static.keras"
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(model)
    result = run_loud([EVALUATE, f"--model_path={model}", "--force_gates=0.5"])
    assert_one_line_error(result, "--force_gates=0.5", "needs a gated dmnn_keras model",
                          "Sequential")
