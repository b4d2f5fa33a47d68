"""Interrupted training subprocesses (SIGTERM, then SIGKILL) resume from the backup when rerun."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import h5py
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipe_helpers import REPO, TRAIN, env, run  # noqa: E402

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)

ARGS = ["--config=tiny", "--epochs=4", "--max_train_examples=512", "--batch_size=32",
        "--max_eval_examples=32", "--figures=false"]


def start(command):
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), cwd=REPO)


def wait_until(condition, process, seconds=600):
    """Polls `condition()` while `process` runs; True once it holds."""
    deadline = time.time() + seconds
    while process.poll() is None and time.time() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def read_metadata(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet, or being written
        return None


def optimizer_steps(weights):
    """The optimizer's iteration count in a Keras 3 weights file (`optimizer/vars/0`)."""
    with h5py.File(weights, "r") as f:
        return int(f["optimizer/vars/0"][()])


def interrupt_mid_epoch(command, metadata, epoch, number):
    """Runs `command` until it has backed up a step of `epoch`, sends `number`; `(returncode, stderr)`."""
    process = start(command)
    try:
        in_epoch = lambda: (read_metadata(metadata) or {}).get("epoch") == epoch  # noqa: E731
        assert wait_until(in_epoch, process), process.communicate(timeout=30)[1][-3000:]
        process.send_signal(number)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr


def test_sigterm_then_sigkill_mid_epoch_and_the_reruns_resume_at_the_exact_step(tmp_path):
    # SIGINT takes the SIGTERM path (dmnn_keras.training.callbacks.stop_on_signals, exit 130):
    # tests/training/test_callbacks.py checks both in-process.
    out = tmp_path / "run"
    steps_per_epoch, epochs = 8, 3  # 256 examples / 32
    command = [sys.executable, TRAIN, *ARGS, "--max_train_examples=256", f"--epochs={epochs}",
               "--backup_every_steps=1", f"--output_dir={out}"]
    backup = out / "backup"
    metadata = backup / "training_metadata.json"
    # 1. SIGTERM in the first epoch: a clean stop that says how to resume.
    returncode, stderr = interrupt_mid_epoch(command, metadata, 0, signal.SIGTERM)
    assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert "Stopped by SIGTERM" in last and str(backup) in last, last
    assert "rerun the same command to resume" in last
    steps = optimizer_steps(backup / "latest.weights.h5")
    assert 0 < steps < steps_per_epoch  # stopped mid-epoch

    # 2. The rerun resumes, and is killed (SIGKILL: no handler runs) in the second epoch.
    returncode, _ = interrupt_mid_epoch(command, metadata, 1, signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()
    resumed_epoch = json.loads(metadata.read_text())["epoch"]
    assert resumed_epoch == 1

    # 3. The last rerun trains only what is missing, continuing the numbering.
    result = run(command[1:], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["epochs_run"] == list(range(resumed_epoch + 1, epochs + 1))
    rows = list(csv.DictReader(open(out / "training_log.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    with zipfile.ZipFile(out / "model.keras") as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    assert optimizer_steps(weights) == epochs * steps_per_epoch  # no step lost or repeated
    assert not backup.exists() or not os.listdir(backup)  # removed when done
