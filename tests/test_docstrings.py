"""Every public object documents Args/Returns/Example, and the cheap examples run.

An example line that is a bare expression followed by a comment holding a
Python literal (`model(x).shape  # (2, 10)`) is checked: the expression must
equal the literal (shapes, lists and dicts compared element by element, floats
to 1e-5).
"""

import ast
import inspect
import io
import math
import os
import re
import tokenize
import types

import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.data import load_dataset
from dmnn_keras.export import classify_image, set_execution
from dmnn_keras.training import run_training

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)


def public_objects():
    objects = {
        name: getattr(dk, name) for name in dir(dk)
        if not name.startswith("_") and not isinstance(getattr(dk, name), types.ModuleType)
    }
    objects.update({
        "data.load_dataset": load_dataset,
        "export.set_execution": set_execution,
        "export.classify_image": classify_image,
        "training.run_training": run_training,
    })
    return objects


OBJECTS = public_objects()

# Examples not executed here (their syntax is still checked).
NOT_RUN = {
    **{name: "224x224 ResNet-50/101" for name in OBJECTS if re.search(r"(50|101)$", name)},
    "training.run_training": "trains and evaluates on CIFAR-10 (tests/recipes)",
}
NEEDS_CIFAR = {"data.load_dataset"}


def examples(obj):
    return re.findall(r"```python\n(.*?)```", inspect.getdoc(obj) or "", re.S)


def test_every_public_object_is_listed():
    expected = {
        "DMNNResNet", "DMNNResNet50", "ResNet", "AIGResNet", "ChannelGatedResNet", "LCNetResNet",
        "MobileNetV2", "DMNNMobileNetV2", "DynamicModel", "DynamicResNet", "DynamicMobileNetV2",
        "GumbelGate", "GateController", "MultiPathBlock", "ResourceLoss", "AIGController",
        "TargetRateLoss", "ChannelGate", "ChannelGatedBlock", "BatchActivationLoss",
        "LCController", "profile", "predict_gates", "force_gates", "prune", "to_tflite",
        "to_saved_model",
    }
    assert expected <= set(OBJECTS), expected - set(OBJECTS)
    assert len(OBJECTS) >= 41


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_docstring_sections(name):
    doc = inspect.getdoc(OBJECTS[name]) or ""
    section = lambda pattern: re.search(rf"^\s*(?:{pattern}):", doc, re.M)
    assert section("Args|Call args"), f"{name}: no Args: / Call args: section"
    assert section("Returns|Outputs"), f"{name}: no Returns: / Outputs: section"
    assert re.search(r"^Example:\n```python\n", doc, re.M), f"{name}: no Example: ```python block"
    for code in examples(OBJECTS[name]):
        assert 1 <= len(code.strip().splitlines()) <= 12, f"{name}: example is not short"
        compile(code, f"<{name} example>", "exec")


def _normalise(value):
    if hasattr(value, "as_list"):  # TensorShape
        value = value.as_list()
    if isinstance(value, dict):
        return {key: _normalise(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, (str, bool, type(None))):
        return value
    if hasattr(value, "shape") or isinstance(value, np.generic):
        array = np.asarray(value)
        return _normalise(array.tolist()) if array.ndim else array.item()
    return value


def _same(got, want):
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(
            _same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            _same(g, w) for g, w in zip(got, want))
    if isinstance(want, float) or isinstance(got, float):
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6)
    return got == want


def _literal_comments(code):
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            try:
                comments[token.start[0]] = ast.literal_eval(token.string[1:].strip())
            except (ValueError, SyntaxError):
                pass
    return comments


def run_example(name, code):
    """Runs `code` statement by statement; returns the number of checked lines."""
    comments = _literal_comments(code)
    namespace, checked = {}, 0
    for statement in ast.parse(code).body:
        if isinstance(statement, ast.Expr) and statement.end_lineno in comments:
            got = eval(compile(ast.Expression(statement.value), f"<{name} example>", "eval"),
                       namespace)
            want = comments[statement.end_lineno]
            line = ast.get_source_segment(code, statement)
            assert _same(_normalise(got), _normalise(want)), f"{name}: {line} -> {got!r}, doc says {want!r}"
            checked += 1
        else:
            exec(compile(ast.Module([statement], []), f"<{name} example>", "exec"), namespace)
    return checked


RUN = sorted(name for name in OBJECTS if name not in NOT_RUN)


@pytest.mark.parametrize("name", RUN)
def test_example_runs(name, tmp_path, monkeypatch):
    if name in NEEDS_CIFAR and not os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", ""), "cifar10")):
        pytest.skip("needs CIFAR-10 in TFDS_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    if name == "export.classify_image":
        import tensorflow as tf

        image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        tf.io.write_file("cat.png", tf.io.encode_png(image))
    codes = examples(OBJECTS[name])
    assert codes
    checked = sum(run_example(name, code) for code in codes)
    assert checked >= 1, f"{name}: the example checks nothing (add `expr  # literal` lines)"
