"""Callbacks of a training run: backup/restore, CSV and TensorBoard logs, epoch timing.

Files under the run's output directory:
  * `backup/`: the training state (weights, optimizer, epoch), written at the
    end of every epoch (and every `backup_every_steps` steps when set) and
    deleted when `fit` completes; rerunning the same command after an
    interruption resumes from it, mid-epoch at the exact step.
  * `training_log.csv`: one row per epoch (appended across resumes).
  * `logs/`: TensorBoard event files; `logs/gates/` holds what the gates do
    (`GateLog`: per-block execution rates, per-image FLOPs-ratio histogram).

SIGINT (Ctrl-C) and SIGTERM (preemption) during `fit` (inside `stop_on_signals`)
finish the current step, write the backup and raise `Interrupted`.
"""

import contextlib
import importlib.util
import os
import signal
import time
import warnings

import keras

BACKUP_DIR = "backup"
CSV_LOG = "training_log.csv"
TENSORBOARD_DIR = "logs"
GATE_LOG_DIR = "gates"  # under TENSORBOARD_DIR: the GateLog run in TensorBoard
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped by `signal_number` (SIGINT or SIGTERM); rerunning resumes from `backup_dir`."""

    def __init__(self, signal_number, backup_dir):
        self.signal_number = signal_number
        self.backup_dir = backup_dir
        super().__init__(
            f"Stopped by {signal.Signals(signal_number).name}; the training state is saved in "
            f"{backup_dir}: rerun the same command to resume."
        )


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
    """`CSVLogger` with the logged metrics only (Keras adds always-`NA` `val_*` columns without validation)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted(logs or {})
        super().on_epoch_end(epoch, logs)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that resumes mid-epoch at the exact step and backs up before stopping.

    Keras restores the weights, the optimizer and the epoch, then reruns that
    epoch from its first step; here the resumed epoch runs only the steps it
    was missing (`optimizer.iterations` tells how many were done; they are
    drawn from a freshly shuffled order), so a finished run has made exactly
    `epochs * steps_per_epoch` optimizer steps. With a step count as
    `save_freq` it also backs up at the end of every epoch.

    After `stop_signal` is set (by `stop_on_signals`), the next step boundary
    writes the backup and raises `Interrupted`; at the end of training the
    backup is then kept, so the rerun redoes only the end-of-training steps.

    Args:
        backup_dir: the backup directory.
        steps_per_epoch: optimizer steps per epoch.
        save_freq: `"epoch"`, or back up every N steps as well.
    """

    def __init__(self, backup_dir, steps_per_epoch, save_freq="epoch"):
        super().__init__(backup_dir, save_freq=save_freq)
        self.steps_per_epoch = steps_per_epoch
        self.stop_signal = None
        self._steps_left = None  # in the resumed epoch
        self._unsaved_steps = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not os.path.exists(self._weights_path):
            return
        epoch = self.model._initial_epoch or 0
        epoch_done, steps_done = divmod(int(self.model.optimizer.iterations), self.steps_per_epoch)
        if epoch_done == epoch + 1 and not steps_done:  # killed between last step and epoch end
            self.model._initial_epoch = epoch_done
        elif epoch_done == epoch and steps_done:
            self._steps_left = self.steps_per_epoch - steps_done

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch  # Keras counts from 0 again after a restore
        self._stop_if_asked()

    def on_train_batch_begin(self, batch, logs=None):
        self._stop_if_asked()

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        self._unsaved_steps = True
        if self._steps_left is not None:
            self._steps_left -= 1
            if self._steps_left == 0:
                self.model.stop_training = True  # ends this epoch only (see on_epoch_end)

    def on_epoch_end(self, epoch, logs=None):
        if self._steps_left is not None:
            self._steps_left = None
            self.model.stop_training = False
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            self._batches_seen_since_last_saving = 0
            self._save_model()

    def on_train_end(self, logs=None):
        self._stop_if_asked()
        super().on_train_end(logs)

    def _save_model(self):
        super()._save_model()
        self._unsaved_steps = False

    def _stop_if_asked(self):
        if self.stop_signal is None:
            return
        if self._unsaved_steps:
            self._save_model()
        raise Interrupted(self.stop_signal, self.backup_dir)


@contextlib.contextmanager
def stop_on_signals(backup):
    """While inside, SIGINT and SIGTERM ask `backup` (a `ResumableBackup`) to stop after the step.

    A second signal acts at once (the previous handlers are back after the first).
    """
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def request_stop(number, frame):
        backup.stop_signal = number
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


def make_callbacks(output_dir, steps_per_epoch=None, backup_every_steps=0, write_logs=True,
                   gate_images=None):
    """The run's callbacks and its `EpochTimer`.

    Args:
        output_dir: the run directory (this worker's, under multi-worker).
        steps_per_epoch: optimizer steps per epoch, for the exact mid-epoch
            resume of `ResumableBackup`; None: Keras' `BackupAndRestore`
            (multi-worker runs).
        backup_every_steps: back up every N steps too (0: once per epoch).
        write_logs: add the CSV and TensorBoard loggers.
        gate_images: None, or fixed images for a `GateLog` (gated models)
            writing to `logs/gates`.

    Returns:
        `(callbacks, timer)`; `callbacks[0]` is the backup.
    """
    os.makedirs(output_dir, exist_ok=True)
    csv_path = os.path.join(output_dir, CSV_LOG)
    if not has_backup(output_dir) and os.path.exists(csv_path):
        os.remove(csv_path)  # a fresh run, not a resume: start the log over
    timer = EpochTimer()
    backup_dir = os.path.join(output_dir, BACKUP_DIR)
    if steps_per_epoch is None:
        backup = keras.callbacks.BackupAndRestore(backup_dir)
    else:
        backup = ResumableBackup(backup_dir, steps_per_epoch, backup_every_steps or "epoch")
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
    return callbacks, timer
