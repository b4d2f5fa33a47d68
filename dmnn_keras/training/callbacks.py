"""Callbacks of a training run: backup/restore, CSV and TensorBoard logs, epoch timing.

Files under the run's output directory:
  * `backup/`: the training state, written at the end of every epoch (and
    every `backup_every_steps` steps when set) and deleted when `fit`
    completes; rerunning the same command after an interruption resumes from
    it, mid-epoch at the exact step. `latest.weights.h5` (weights, optimizer)
    and `training_metadata.json` (epoch, batch, optimizer step) are written
    under temporary names, then renamed; the backup before them is kept as
    `previous.weights.h5` / `previous_metadata.json` until they are complete.
    A broken backup raises `BackupError` naming the file and what to do.
  * `training_log.csv`: one row per epoch (appended across resumes).
  * `logs/`: TensorBoard event files; `logs/gates/` holds what the gates do
    (`GateLog`: per-block execution rates, per-image FLOPs-ratio histogram).

SIGINT (Ctrl-C) and SIGTERM (preemption) during `fit` (inside `stop_on_signals`)
finish the current step, write the backup and raise `Interrupted`. Under
multi-worker (`peers`), a signal to any worker stops every worker after the
same step (each backs up); a worker that cannot reach it within the peers'
timeout exits at once, keeping its last complete backup.
"""

import contextlib
import csv
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import warnings

import keras

from dmnn_keras.keras_compat import (BackupAndRestoreHooks, cache_saving_skipsets, resume_epoch,
                                     set_resume_epoch)

BACKUP_DIR = "backup"
CSV_LOG = "training_log.csv"
TENSORBOARD_DIR = "logs"
GATE_LOG_DIR = "gates"  # under TENSORBOARD_DIR: the GateLog run in TensorBoard
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
WEIGHTS, METADATA = "latest.weights.h5", "training_metadata.json"  # Keras' names
PREVIOUS_WEIGHTS, PREVIOUS_METADATA = "previous.weights.h5", "previous_metadata.json"
INCOMING_WEIGHTS, INCOMING_METADATA = "incoming.weights.h5", "incoming_metadata.json"
STOP_MARGIN = 2  # steps between a signal and the multi-worker stop (all workers must see it first)
RESTART_HINT = "rerun with --restart to discard the backup and train from the start"


class BackupError(ValueError):
    """A backup that cannot be resumed from (broken, or not matching the other workers'); says what to do."""


class Interrupted(Exception):
    """Training stopped by `signal_number` (SIGINT or SIGTERM); rerunning resumes from `backup_dir`."""

    def __init__(self, signal_number, backup_dir):
        self.signal_number = signal_number
        self.backup_dir = backup_dir
        super().__init__(
            f"Stopped by {signal.Signals(signal_number).name}; the training state is saved in "
            f"{backup_dir}: rerun the same command to resume."
        )


def _read_backup(weights, metadata):
    """The metadata dict of a complete backup `(weights, metadata)`, None when a file is missing.

    Raises `BackupError` (naming the file) for a truncated or corrupt one.
    """
    if not (os.path.exists(weights) and os.path.exists(metadata)):
        return None
    try:
        with open(metadata) as f:
            data = json.load(f)
        int(data["epoch"]), int(data.get("step", 0))  # older backups have no "step"
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BackupError(f"{metadata} is truncated or corrupt ({type(error).__name__})") from None
    import h5py

    try:
        with h5py.File(weights, "r"):
            pass
    except OSError as error:
        reason = str(error).split("(", 1)[-1].rstrip(")") or type(error).__name__
        raise BackupError(f"{weights} is truncated or corrupt ({reason})") from None
    return data


def _position(metadata):
    """Where a backup's metadata says training stopped: "epoch E, step S"."""
    return f"epoch {metadata['epoch']}, step {metadata.get('step', '?')}"


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


class TrainingLog(keras.callbacks.CSVLogger):
    """`CSVLogger` with the logged metrics only, and one row per epoch across resumes.

    Keras adds always-`NA` `val_*` columns without validation; here there are
    none. A resumed run redoes the epoch an interruption cut short, maybe after
    its row was written: the first epoch a `fit` begins drops the rows of that
    epoch and later ones (rewriting the file under a temporary name first).
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch:
            self._first_epoch = False
            self._drop_rows_from(epoch)

    def _drop_rows_from(self, epoch):
        self.csv_file.close()
        with open(self.filename, newline="") as f:
            lines = list(csv.reader(f, delimiter=self.sep))
        kept = lines[:1] + [row for row in lines[1:]
                            if row and row[0].isdigit() and int(row[0]) < epoch]
        if len(kept) < len(lines):
            incoming = self.filename + ".incoming"
            with open(incoming, "w", newline="") as f:
                csv.writer(f, delimiter=self.sep).writerows(kept)
            os.replace(incoming, self.filename)
        self.csv_file = open(self.filename, "a", newline="")

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted(logs or {})
        super().on_epoch_end(epoch, logs)


class ResumableBackup(BackupAndRestoreHooks):
    """`BackupAndRestore` that resumes mid-epoch at the exact step and backs up before stopping.

    Keras restores the weights, the optimizer and the epoch, then reruns that
    epoch from its first step; here the resumed epoch runs only the steps it
    was missing (`optimizer.iterations` tells how many were done; they are
    drawn from a freshly shuffled order), so a finished run has made exactly
    `epochs * steps_per_epoch` optimizer steps. The backup at the end of every
    epoch is written by an `EpochEndBackup` of it, last in the callbacks (the
    epoch's last step is not backed up on its own: that backup follows); with
    a step count as `save_freq` it also backs up every `save_freq` steps.

    After `request_stop` (by `stop_on_signals`), the next step boundary
    writes the backup and raises `Interrupted`; at the end of training the
    backup is then kept, so the rerun redoes only the end-of-training steps.
    With `peers` (multi-worker), every worker stops after the step the first
    request names, and on resume every worker checks that the backups of all
    workers are at the same step.

    Args:
        backup_dir: the backup directory.
        steps_per_epoch: optimizer steps per epoch.
        save_freq: `"epoch"`, or back up every N steps as well.
        peers: None, or the run's `strategy.Peers` (multi-worker).
    """

    def __init__(self, backup_dir, steps_per_epoch, save_freq="epoch", peers=None):
        super().__init__(backup_dir, save_freq=save_freq)
        self.steps_per_epoch = steps_per_epoch
        self.peers = peers
        self._stop_signal = None  # one process: the signal of a pending stop (multi-worker: peers)
        self._steps_left = None  # in the resumed epoch
        self._unsaved_steps = False
        self._optimizer_steps = 0  # made so far: `optimizer.iterations`, counted here step by step
        self._deadline = None  # multi-worker: exits if the stop step is not reached in time

    def _path(self, name):
        return os.path.join(self.backup_dir, name)

    def _choose_backup(self):
        """`(weights path, metadata)` to resume from, or None; `BackupError` for a broken one."""
        latest = (self._path(WEIGHTS), self._path(METADATA))
        previous = (self._path(PREVIOUS_WEIGHTS), self._path(PREVIOUS_METADATA))
        try:
            kept = _read_backup(*previous)
        except BackupError:
            kept = None
        try:
            data = _read_backup(*latest)
        except BackupError as error:
            choice = (f"resume from the previous backup ({_position(kept)}) by deleting "
                      f"{latest[0]} and {latest[1]}, or " if kept else "no earlier backup is kept: ")
            raise BackupError(f"{error}: {choice}{RESTART_HINT}") from None
        if data is not None:
            return latest[0], data
        if kept is not None:  # stopped between the renames of a save: the previous is complete
            return previous[0], kept
        return None

    def on_train_begin(self, logs=None):
        chosen = self._choose_backup()
        if self.peers is not None:
            self._check_peers(None if chosen is None else chosen[1])
            self.peers.watch_stop_requests()
        if chosen is None:
            return
        weights, data = chosen
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        set_resume_epoch(self.model, int(data["epoch"]))
        # (a MirroredVariable under multi_worker: int() of it fails)
        self._optimizer_steps = int(self.model.optimizer.iterations.value.read_value())
        epoch = resume_epoch(self.model) or 0
        epoch_done, steps_done = divmod(self._optimizer_steps, self.steps_per_epoch)
        if epoch_done == epoch + 1 and not steps_done:  # killed between last step and epoch end
            set_resume_epoch(self.model, epoch_done)
        elif epoch_done == epoch and steps_done:
            self._steps_left = self.steps_per_epoch - steps_done

    def on_epoch_begin(self, epoch, logs=None):
        self.backup_epoch = epoch  # Keras counts from 0 again after a restore
        self._stop_if_asked()

    def on_train_batch_begin(self, batch, logs=None):
        self._stop_if_asked()

    def _check_peers(self, data):
        """Every worker's backup must be at the chief's step; raises `BackupError` otherwise."""
        where = "none" if data is None else _position(data)
        self.peers.publish(f"backup/{self.peers.index}", where)
        found = [self.peers.read(f"backup/{i}") for i in range(self.peers.num_workers)]
        different = [f"worker {i}'s: {w}" for i, w in enumerate(found) if w != found[0]]
        if different:
            raise BackupError(
                f"the workers' backups differ (the chief's: {found[0]}; {'; '.join(different)}; "
                f"this worker's is {self.backup_dir}): they must all be at the same step. "
                "Restore the matching backups, or rerun every worker with --restart to discard "
                "them and train from the start")

    def request_stop(self, signal_number):
        """Stop at the next step boundary (multi-worker: at the step every worker is told)."""
        if self.peers is None:
            self._stop_signal = signal_number
        else:  # the first request of any worker wins: `peers.stop_request`
            self.peers.request_stop(signal_number, self._optimizer_steps + STOP_MARGIN)

    def on_train_batch_end(self, batch, logs=None):
        self._optimizer_steps += 1
        self._unsaved_steps = True
        if self._optimizer_steps % self.steps_per_epoch:  # (the last step: `EpochEndBackup`)
            super().on_train_batch_end(batch, logs)
        if self._steps_left is not None:
            self._steps_left -= 1
            if self._steps_left == 0:
                self.model.stop_training = True  # ends this epoch only (see on_epoch_end)

    def on_epoch_end(self, epoch, logs=None):
        if self._steps_left is not None:
            self._steps_left = None
            self.model.stop_training = False
        self.count_epoch_end(epoch)  # `EpochEndBackup` saves, after the other callbacks
        self.reset_batch_count()

    def on_train_end(self, logs=None):
        self._stop_if_asked(at_end=True)
        if self.peers is not None:
            self.peers.close()
        super().on_train_end(logs)

    def save_backup(self):
        """Writes the backup under temporary names, keeps the previous one, then renames."""
        os.makedirs(self.backup_dir, exist_ok=True)
        cache_saving_skipsets()
        self.model.save_weights(self._path(INCOMING_WEIGHTS), overwrite=True)
        with open(self._path(INCOMING_METADATA), "w") as f:
            json.dump({"epoch": self.backup_epoch, "batch": self.backup_batch,
                       "step": self._optimizer_steps}, f)
        if os.path.exists(self._path(WEIGHTS)) and os.path.exists(self._path(METADATA)):
            os.replace(self._path(WEIGHTS), self._path(PREVIOUS_WEIGHTS))
            os.replace(self._path(METADATA), self._path(PREVIOUS_METADATA))
        os.replace(self._path(INCOMING_WEIGHTS), self._path(WEIGHTS))
        os.replace(self._path(INCOMING_METADATA), self._path(METADATA))
        self._unsaved_steps = False

    def _stop_if_asked(self, at_end=False):
        if self.peers is None:
            number = self._stop_signal
        else:  # every worker stops after the step of the first request
            request = self.peers.stop_request
            if request is None:
                return
            number, step = request
            if self._deadline is None:
                self._deadline = threading.Timer(self.peers.timeout, self._give_up, (number,))
                self._deadline.daemon = True
                self._deadline.start()
            if self._optimizer_steps < step and not at_end:
                return
        if number is None:
            return
        if self._unsaved_steps:
            self.save_backup()
        if self.peers is not None:
            self._deadline.cancel()
            self._leave_together()
        raise Interrupted(number, self.backup_dir)

    def _leave_together(self):
        """The chief, which runs the coordination service, exits after every worker has backed up."""
        self.peers.publish(f"saved/{self.peers.index}", "1")
        if self.peers.index == 0:
            for index in range(1, self.peers.num_workers):
                self.peers.read(f"saved/{index}")
        self.peers.close()

    def _give_up(self, number):
        print(f"Stopped by {signal.Signals(number).name}, but another worker did not reach the "
              f"stop step within peer_timeout={self.peers.timeout:g} s; the last complete backup "
              f"in {self.backup_dir} is kept: rerun the same command on every worker to resume.",
              file=sys.stderr, flush=True)
        os._exit(128 + number)


class EpochEndBackup(keras.callbacks.Callback):
    """Writes `backup`'s epoch-end backup: last in the list, after every other callback's epoch end.

    Once the backup records an epoch as done, a rerun does not redo it, so
    what the other callbacks do at its end (the log row, a target correction)
    must already be done.
    """

    def __init__(self, backup):
        super().__init__()
        self.backup = backup

    def on_epoch_end(self, epoch, logs=None):
        self.backup.save_backup()


@contextlib.contextmanager
def stop_on_signals(backup):
    """While inside, SIGINT and SIGTERM ask `backup` (a `ResumableBackup`) to stop after the step.

    A second signal acts at once (the previous handlers are back after the first).
    """
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def request_stop(number, frame):
        backup.request_stop(number)
        for other, handler in previous.items():
            signal.signal(other, handler)

    for number in STOP_SIGNALS:
        signal.signal(number, request_stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def has_backup(output_dir):
    """True when `output_dir` holds an interrupted run's backup."""
    backup = os.path.join(output_dir, BACKUP_DIR)
    return os.path.isdir(backup) and bool(os.listdir(backup))


class GateLog(keras.callbacks.Callback):
    """Writes what the gates do on fixed images to TensorBoard at the end of every epoch.

    `dmnn_keras.profile` of the model on `images` (gates as in `predict`),
    written with `tf.summary` at step = epoch:
      * `execution_rate/<block>`: fraction of the block's sub-blocks run;
      * `flops_ratio`: mean executed / full MACs;
      * `flops_ratio_per_image`: histogram of the per-image executed / full MACs.

    Args:
        log_dir: the TensorBoard run directory (e.g. `<output_dir>/logs/gates`).
        images: `[N, H, W, 3]` array or deterministic dataset of images (or
            `(images, labels)`), the same every epoch, e.g. validation images.
        batch_size: batch size for an array.
    """

    def __init__(self, log_dir, images, batch_size=64):
        super().__init__()
        self.log_dir = log_dir
        self.images = images
        self.batch_size = batch_size
        self._writer = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        from dmnn_keras.profiling import profile

        stats = profile(self.model, self.images, self.batch_size)
        with self._writer.as_default(step=epoch):
            for name, rate in stats["execution_rates"].items():
                tf.summary.scalar(f"execution_rate/{name}", rate)
            tf.summary.scalar("flops_ratio", stats["flops_ratio"])
            tf.summary.histogram("flops_ratio_per_image", stats["executed_flops"] / stats["flops"])
        self._writer.flush()

    def on_train_end(self, logs=None):
        self._writer.close()


def make_callbacks(output_dir, steps_per_epoch, backup_every_steps=0, write_logs=True,
                   gate_images=None, peers=None, restart=False, extra=()):
    """The run's callbacks and its `EpochTimer`.

    Args:
        output_dir: the run directory (this worker's, under multi-worker).
        steps_per_epoch: optimizer steps per epoch (the `ResumableBackup`
            resumes mid-epoch at the exact step).
        backup_every_steps: back up every N steps too (0: once per epoch).
        write_logs: add the CSV and TensorBoard loggers.
        gate_images: None, or fixed images for a `GateLog` (gated models)
            writing to `logs/gates`.
        peers: None, or the `strategy.Peers` of a multi-worker run.
        restart: delete the backup of an interrupted run first.
        extra: more callbacks, placed before the `EpochEndBackup` (last), so
            that what they do at an epoch's end is in that epoch's backup.

    Returns:
        `(callbacks, timer)`; `callbacks[0]` is the backup.
    """
    os.makedirs(output_dir, exist_ok=True)
    backup_dir = os.path.join(output_dir, BACKUP_DIR)
    if restart and os.path.isdir(backup_dir):
        import shutil

        shutil.rmtree(backup_dir)
    csv_path = os.path.join(output_dir, CSV_LOG)
    if not has_backup(output_dir) and os.path.exists(csv_path):
        os.remove(csv_path)  # a fresh run, not a resume: start the log over
    timer = EpochTimer()
    backup = ResumableBackup(backup_dir, steps_per_epoch, backup_every_steps or "epoch", peers)
    callbacks = [backup, timer]
    if write_logs:
        callbacks.append(TrainingLog(csv_path, append=True))
        if importlib.util.find_spec("tensorboard") is not None:
            log_dir = os.path.join(output_dir, TENSORBOARD_DIR)
            callbacks.append(keras.callbacks.TensorBoard(log_dir))
            if gate_images is not None:
                callbacks.append(GateLog(os.path.join(log_dir, GATE_LOG_DIR), gate_images))
        else:
            warnings.warn("TensorBoard is not installed (pip install tensorboard): no logs/ written.")
    callbacks += [*extra, EpochEndBackup(backup)]
    return callbacks, timer
