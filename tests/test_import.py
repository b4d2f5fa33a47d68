"""`import dmnn_keras` is light and backend-clean; data, export and training load on first use."""

import ast
import importlib
import json
import subprocess
import sys

import pytest

import dmnn_keras as dk

LAZY_MODULES = ("dmnn_keras.data", "dmnn_keras.export", "dmnn_keras.training.run")
HEAVY_PACKAGES = ("tensorflow_datasets", "matplotlib")

# Keras 3.15 itself imports matplotlib (keras.src.visualization), so what dmnn_keras adds is
# measured against the modules present after `import keras`.
PROBE = """
import json, sys
import keras
before = set(sys.modules)
import dmnn_keras
added = sorted(set(sys.modules) - before)
files = {m: sys.modules[m].__file__ for m in added if m.startswith("dmnn_keras")}
print(json.dumps({"added": added, "all": sorted(sys.modules), "files": files}))
"""


def _top_level_imports(path):
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_import_is_light_and_backend_clean():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            check=True)
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    added = modules["added"]
    assert "tensorflow_datasets" not in modules["all"]
    heavy = [m for m in added if m.split(".")[0] in HEAVY_PACKAGES]
    assert not heavy, f"import dmnn_keras imported {heavy[:5]}"
    assert not set(LAZY_MODULES) & set(added)
    assert "dmnn_keras.layers.multi_path_block" in modules["files"]
    for name, path in modules["files"].items():  # no module it loads imports TensorFlow itself
        tensorflow = [m for m in _top_level_imports(path) if m.split(".")[0] == "tensorflow"]
        assert not tensorflow, f"{name} imports {tensorflow} at module level"


def test_lazy_names_load_on_use():
    from dmnn_keras.training import TrainConfig, run_training  # noqa: F401

    assert dk.export is importlib.import_module("dmnn_keras.export")
    assert dk.to_tflite is dk.export.to_tflite and dk.to_saved_model is dk.export.to_saved_model
    assert {"data", "export", "training", "to_tflite", "DMNNResNet"} <= set(dir(dk))
    assert {"run_training", "PRESETS", "FlopsTargetSchedule"} <= set(dir(dk.training))
    assert dk.training.callbacks is importlib.import_module("dmnn_keras.training.callbacks")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        dk.nothing
    with pytest.raises(ImportError):
        from dmnn_keras.training import nothing  # noqa: F401
