"""A training subprocess killed after its first epoch resumes from the backup when rerun."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipe_helpers import REPO, TRAIN, env, run  # noqa: E402

ARGS = ["--config=tiny", "--epochs=4", "--max_train_examples=512", "--batch_size=32",
        "--max_eval_examples=32", "--figures=false"]


def test_killed_run_resumes_and_finishes_all_epochs(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, TRAIN, *ARGS, f"--output_dir={out}"]
    metadata = out / "backup" / "training_metadata.json"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env(), cwd=REPO)
    try:
        deadline = time.time() + 240
        while not metadata.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert metadata.exists(), "no backup after the first epoch"
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
