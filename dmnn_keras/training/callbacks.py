"""Callbacks of a training run: backup/restore, CSV and TensorBoard logs, epoch timing.

Files under the run's output directory:
  * `backup/`: `keras.callbacks.BackupAndRestore` state (weights, optimizer,
    epoch), written at the end of every epoch and deleted when `fit`
    completes; rerunning the same command after an interruption resumes from
    the last finished epoch.
  * `training_log.csv`: one row per epoch (appended across resumes).
  * `logs/`: TensorBoard event files.
"""

import importlib.util
import os
import time
import warnings

import keras

BACKUP_DIR = "backup"
CSV_LOG = "training_log.csv"
TENSORBOARD_DIR = "logs"


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch run by this process (`seconds`)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.epochs = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        self.epochs.append(int(epoch))


def has_backup(output_dir):
    """True when `output_dir` holds an interrupted run's backup."""
    backup = os.path.join(output_dir, BACKUP_DIR)
    return os.path.isdir(backup) and bool(os.listdir(backup))


def make_callbacks(output_dir, write_logs=True):
    """The run's callbacks and its `EpochTimer`.

    Args:
        output_dir: the run directory (this worker's, under multi-worker).
        write_logs: add the CSV and TensorBoard loggers.

    Returns:
        `(callbacks, timer)`.
    """
    os.makedirs(output_dir, exist_ok=True)
    csv_path = os.path.join(output_dir, CSV_LOG)
    if not has_backup(output_dir) and os.path.exists(csv_path):
        os.remove(csv_path)  # a fresh run, not a resume: start the log over
    timer = EpochTimer()
    callbacks = [keras.callbacks.BackupAndRestore(os.path.join(output_dir, BACKUP_DIR)), timer]
    if write_logs:
        callbacks.append(keras.callbacks.CSVLogger(csv_path, append=True))
        if importlib.util.find_spec("tensorboard") is not None:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, TENSORBOARD_DIR)))
        else:
            warnings.warn("TensorBoard is not installed (pip install tensorboard): no logs/ written.")
    return callbacks, timer
