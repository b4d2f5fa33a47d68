"""Shared by the recipe tests: paths, the tiny flags, subprocess runs with TFDS_DATA_DIR set."""

import importlib.util
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "recipes", "train.py")
EVALUATE = os.path.join(REPO, "recipes", "evaluate.py")
TINY = ["--config=tiny", "--max_train_examples=64", "--max_eval_examples=64", "--batch_size=32"]


def env():
    environment = dict(os.environ)
    environment.setdefault("TFDS_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "tfds"))
    environment["PYTHONPATH"] = REPO + os.pathsep + environment.get("PYTHONPATH", "")
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return environment


def run(args, timeout=240, cwd=REPO, **kwargs):
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, env=env(),
                          timeout=timeout, cwd=cwd, **kwargs)


def load_recipe(path, name):
    """Imports a recipe module by path (its absl flags get defined once)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


os.environ.setdefault("TFDS_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "tfds"))
