"""Interrupted training subprocesses (SIGKILL, SIGTERM, SIGINT) resume from the backup when rerun."""

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipe_helpers import REPO, TRAIN, env, run  # noqa: E402

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


def test_killed_run_resumes_and_finishes_all_epochs(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, TRAIN, *ARGS, f"--output_dir={out}"]
    metadata = out / "backup" / "training_metadata.json"
    process = start(command)
    try:
        written = lambda: read_metadata(metadata) is not None  # noqa: E731  (complete, not mid-write)
        assert wait_until(written, process), "no backup after the first epoch"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()
    done_before = json.loads(metadata.read_text())["epoch"]
    assert 1 <= done_before < 4

    result = run(command[1:], timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    # The rerun trained only the missing epochs, continuing the numbering.
    assert report["epochs_run"] == list(range(done_before + 1, 5))
    rows = list(csv.DictReader(open(out / "training_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert not (out / "backup").exists() or not os.listdir(out / "backup")  # removed when done


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


def test_sigterm_mid_epoch_stops_cleanly_and_the_rerun_resumes_at_the_exact_step(tmp_path):
    # SIGINT takes the same path (dmnn_keras.training.callbacks.stop_on_signals, exit 130):
    # tests/training/test_callbacks.py checks both in-process.
    out = tmp_path / "run"
    steps_per_epoch, epochs = 8, 2  # 256 examples / 32
    command = [sys.executable, TRAIN, *ARGS, "--max_train_examples=256", f"--epochs={epochs}",
               "--backup_every_steps=1", f"--output_dir={out}"]
    backup = out / "backup"
    returncode, stderr = interrupt_mid_epoch(
        command, backup / "training_metadata.json", 0, signal.SIGTERM)
    assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert "Stopped by SIGTERM" in last and str(backup) in last, last
    assert "rerun the same command to resume" in last
    steps = optimizer_steps(backup / "latest.weights.h5")
    assert 0 < steps < steps_per_epoch  # stopped mid-epoch

    result = run(command[1:], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "training_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    with zipfile.ZipFile(out / "model.keras") as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    assert optimizer_steps(weights) == epochs * steps_per_epoch  # no step lost or repeated
