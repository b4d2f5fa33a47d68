"""The run's backup: SIGTERM / SIGINT mid-epoch stop after the step, and the rerun resumes exactly."""

import csv
import json
import signal

import keras
import numpy as np
import pytest

from dmnn_keras.training import callbacks as callbacks_lib

STEPS, EPOCHS = 8, 3


class RaiseSignal(keras.callbacks.Callback):
    """Sends `number` to this process after `step` of `epoch`."""

    def __init__(self, epoch, step, number):
        super().__init__()
        self.at, self.number, self.epoch = (epoch, step), number, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            signal.raise_signal(self.number)


def fit(output_dir, *extra, restart=False):
    """A fresh process' view: a new model, the run's callbacks, fit inside `stop_on_signals`."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    callbacks, _ = callbacks_lib.make_callbacks(str(output_dir), STEPS, backup_every_steps=1,
                                                restart=restart, extra=extra)
    x = np.random.default_rng(0).random((STEPS * 4, 3))
    with callbacks_lib.stop_on_signals(callbacks[0]):
        model.fit(x, x[:, :2], batch_size=4, epochs=EPOCHS, callbacks=callbacks, verbose=0,
                  shuffle=False)
    return model


def test_signals_mid_epoch_back_up_and_the_rerun_makes_exactly_the_missing_steps(tmp_path):
    metadata = tmp_path / "backup" / "training_metadata.json"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for epoch, step, number in ((0, 2, signal.SIGTERM), (1, 5, signal.SIGINT)):
        with pytest.raises(callbacks_lib.Interrupted, match=f"{number.name}.*rerun") as stopped:
            fit(tmp_path, RaiseSignal(epoch, step, number))
        assert stopped.value.signal_number == number
        assert json.loads(metadata.read_text()) == {"epoch": epoch, "batch": step,
                                                    "step": epoch * STEPS + step + 1}
    # The handlers are restored (whatever they were: a background job starts with SIGINT ignored).
    assert {s: signal.getsignal(s) for s in handlers} == handlers

    model = fit(tmp_path)
    assert int(model.optimizer.iterations) == EPOCHS * STEPS
    rows = list(csv.DictReader(open(tmp_path / callbacks_lib.CSV_LOG)))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))
    assert list(rows[0]) == ["epoch", "loss"]  # no always-NA val_* columns
    assert not metadata.exists()


class DieAtEpochEnd(keras.callbacks.Callback):
    """At the end of `epoch` records the log's epochs and the backup's metadata, then raises (a kill)."""

    def __init__(self, output_dir, epoch):
        super().__init__()
        self.output_dir, self.epoch, self.seen = output_dir, epoch, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            rows = csv.DictReader(open(self.output_dir / callbacks_lib.CSV_LOG))
            metadata = self.output_dir / "backup" / "training_metadata.json"
            self.seen = [int(r["epoch"]) for r in rows], json.loads(metadata.read_text())
            raise RuntimeError("killed")


def test_an_epoch_is_backed_up_as_done_after_its_row_and_a_redone_epoch_end_keeps_one_row(
        tmp_path):
    die = DieAtEpochEnd(tmp_path, 1)
    with pytest.raises(RuntimeError, match="killed"):
        fit(tmp_path, die)
    # The row of epoch 1 is written; the backup still has the epoch's last step to make (a kill
    # here used to leave a backup of the finished epoch and no row: the rerun never wrote it).
    assert die.seen == ([0, 1], {"epoch": 1, "batch": STEPS - 2, "step": 2 * STEPS - 1})
    model = fit(tmp_path)
    assert int(model.optimizer.iterations) == EPOCHS * STEPS
    rows = list(csv.DictReader(open(tmp_path / callbacks_lib.CSV_LOG)))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))  # epoch 1's row once


def test_a_broken_backup_is_named_with_the_ways_on_and_the_previous_one_is_kept(tmp_path):
    with pytest.raises(callbacks_lib.Interrupted):
        fit(tmp_path, RaiseSignal(0, 5, signal.SIGTERM))
    backup = tmp_path / "backup"
    weights, metadata = backup / "latest.weights.h5", backup / "training_metadata.json"
    good = weights.read_bytes()
    weights.write_bytes(good[:1000])  # truncated, as by a full disk
    with pytest.raises(callbacks_lib.BackupError) as error:
        fit(tmp_path)
    message = str(error.value)
    assert "\n" not in message and f"{weights} is truncated or corrupt" in message, message
    # The two ways on: the previous backup (kept until the new one was complete), or --restart.
    assert "resume from the previous backup (epoch 0, step 5) by deleting" in message, message
    assert "rerun with --restart to discard the backup" in message
    weights.write_bytes(good)
    metadata.write_text(metadata.read_text()[:9])
    with pytest.raises(callbacks_lib.BackupError, match=f"{metadata} is truncated or corrupt"):
        fit(tmp_path)

    weights.unlink(), metadata.unlink()  # the first way: resume from the previous backup
    assert int(fit(tmp_path).optimizer.iterations) == EPOCHS * STEPS
    rows = list(csv.DictReader(open(tmp_path / callbacks_lib.CSV_LOG)))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))

    backup.mkdir()  # the second way: restart discards the (broken) backup
    weights.write_bytes(good[:1000]), metadata.write_text("")
    model = fit(tmp_path, restart=True)
    assert int(model.optimizer.iterations) == EPOCHS * STEPS
    rows = list(csv.DictReader(open(tmp_path / callbacks_lib.CSV_LOG)))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))  # the log started over
