"""MultiWorkerMirroredStrategy with two local workers: preemption, backups that must agree, a
missing peer (its own file so that pytest-xdist's --dist loadfile can run it beside the mirrored
tests of test_distribution.py)."""

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipe_helpers import REPO, TRAIN, env  # noqa: E402

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)

TINY = ["--config=tiny", "--epochs=1", "--max_train_examples=128", "--batch_size=32",
        "--max_eval_examples=32", "--figures=false"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workers(flags, count=2, started=None, chief=False):
    """Starts `train.py flags` as workers `started` (positions, default all) of a `count`-worker
    local cluster: TF_CONFIG's workers only, or a chief job and `count - 1` workers (`chief`)."""
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(count)]
    cluster = {"chief": addresses[:1], "worker": addresses[1:]} if chief else {"worker": addresses}
    tasks = [(job, index) for job in cluster for index in range(len(cluster[job]))]
    processes = []
    for position in range(count) if started is None else started:
        environment = env()
        job, index = tasks[position]
        environment["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": job, "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, TRAIN, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=environment, cwd=REPO))
    return processes


def finish(processes, timeout):
    """Waits for every process (killing them all after `timeout` s); their `(returncode, stderr)`."""
    deadline = time.time() + timeout
    try:
        stderrs = [p.communicate(timeout=max(deadline - time.time(), 1))[1] for p in processes]
        return [(p.returncode, stderr) for p, stderr in zip(processes, stderrs)]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def last_recipe_line(stderr):
    """The last line train.py itself wrote to `stderr`: TensorFlow's C++ logs (e.g. gRPC's
    "Connection refused" from a peer already gone) may come after it, written at exit."""
    lines = [line for line in stderr.splitlines() if line.startswith("train.py: ")]
    return lines[-1] if lines else ""


def optimizer_steps(weights):
    import h5py

    with h5py.File(weights, "r") as f:
        return int(f["optimizer/vars/0"][()])


def test_multi_worker_preemption_broken_backups_and_a_missing_peer(tmp_path):
    """Two local workers: SIGTERM to one stops both at the same step; backups that differ are
    refused; the rerun finishes with every epoch once; a lone worker gives up after --peer_timeout.
    One setup for the four cases: every launch of two workers costs a TensorFlow start-up each.
    The rerun's TF_CONFIG has a chief job: its worker 0 is position 1, as worker 1 was."""
    out = tmp_path / "run"
    # A static ResNet at 16 px a quarter wide: the workers trace and step fast.
    flags = [*TINY, "--model=resnet", "--image_size=16", "--width_multiplier=0.25", "--epochs=2",
             "--max_train_examples=256", "--strategy=multi_worker",
             "--peer_timeout=20", f"--output_dir={out}"]
    lone = start_workers([*flags[:-2], "--peer_timeout=2", f"--output_dir={tmp_path / 'lone'}"],
                         started=[1])
    processes = start_workers(flags)
    chief_metadata = out / "backup" / "training_metadata.json"
    deadline = time.time() + 600
    while not chief_metadata.exists() and processes[0].poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the first epoch's backup: the run is in its second epoch
    processes[1].send_signal(signal.SIGTERM)
    signalled = time.time()
    while any(p.poll() is None for p in processes) and time.time() < signalled + 120:
        time.sleep(0.05)
    stop_seconds = time.time() - signalled
    stopped = finish(processes, 1)
    backups = [out / "backup", out / "workers" / "1" / "backup"]
    for (returncode, stderr), backup in zip(stopped, backups):
        assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        assert last_recipe_line(stderr).startswith(
            f"train.py: Stopped by SIGTERM; the training state is saved in {backup}: rerun"
        ), stderr[-3000:]
    steps = [json.loads((b / "training_metadata.json").read_text())["step"] for b in backups]
    assert steps[0] == steps[1] and 8 < steps[0] < 16, steps  # both in the 2nd epoch, same step
    assert all(optimizer_steps(b / "latest.weights.h5") == steps[0] for b in backups)
    assert stop_seconds < 30

    (returncode, stderr), = finish(lone, 60)  # started with the others: already done
    assert returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    # (TensorFlow's C++ logs of the failed registration stay around the line.)
    message = next((line for line in stderr.splitlines() if line.startswith("train.py: error:")), "")
    assert message.startswith("train.py: error: worker 1: not every worker of TF_CONFIG (127.0.0.1:"
                              ), stderr[-3000:]
    assert message.endswith("started within peer_timeout=2 s: start the same command on each of "
                            "them, or raise --peer_timeout"), message

    # Worker 1 kept its older backup (a kill between the workers' saves): both refuse to run.
    latest = {name: (backups[1] / name).read_bytes()
              for name in ("latest.weights.h5", "training_metadata.json")}
    for name, previous in (("latest.weights.h5", "previous.weights.h5"),
                           ("training_metadata.json", "previous_metadata.json")):
        (backups[1] / name).write_bytes((backups[1] / previous).read_bytes())
    for returncode, stderr in finish(start_workers(flags), 600):
        assert returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
        message = next((line for line in stderr.splitlines() if "backups differ" in line), "")
        assert message.startswith("train.py: error: the workers' backups differ (the chief's: "
                                  f"epoch 1, step {steps[0]}; worker 1's: epoch 1, step 8;"
                                  ), stderr[-3000:]
        assert message.endswith("rerun every worker with --restart to discard them and train "
                                "from the start"), message

    for name, content in latest.items():
        (backups[1] / name).write_bytes(content)
    for returncode, stderr in finish(start_workers(flags, chief=True), 600):
        assert returncode == 0, stderr[-3000:]
    rows = list(csv.DictReader(open(out / "training_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1]  # each epoch once
    report = json.loads((out / "report.json").read_text())
    assert report["flags"]["num_replicas"] == 2 and report["flags"]["strategy"] == "multi_worker"
    assert report["steps_per_epoch"] == 8
    with zipfile.ZipFile(out / "model.keras") as archive:
        assert optimizer_steps(io.BytesIO(archive.read("model.weights.h5"))) == 16
    assert (out / "workers" / "1" / "model.keras").exists()
    assert not (out / "workers" / "1" / "report.json").exists()  # only the chief reports
