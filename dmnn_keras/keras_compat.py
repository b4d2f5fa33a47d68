"""Every private Keras attribute dmnn_keras relies on, behind one small named function each.

Keras 3 has no public API for these jobs (walking nested layers, reading a
functional graph's nodes, the resume epoch of `fit`, the per-replica scaling
of an extra loss, the symbolic build before `fit`, `BackupAndRestore`'s save
hook and counters). Each function below was checked against Keras 3.15, the
version the package pins (`keras>=3.15,<3.16` in setup.cfg); before moving the
pin, run tests/test_keras_compat.py, which lists every attribute missing from
the installed Keras (`missing_private_attributes`).
"""

import keras
import numpy as np

CHECKED_KERAS = "3.15"  # the pin in setup.cfg: keras>=3.15,<3.16


def nested_layers(layer, include_self=False):
    """Every layer inside `layer` (nested layers and models included), each once.

    `Layer._flatten_layers` (checked against Keras 3.15): breadth-first from
    `layer`'s direct sublayers, depth-first below them.
    """
    return layer._flatten_layers(include_self=include_self)


def producing_layer(tensor):
    """The layer (or `InputLayer`) whose call made the symbolic `tensor`.

    `KerasTensor._keras_history[0]` (checked against Keras 3.15).
    """
    return tensor._keras_history[0]


def layer_calls(layer):
    """`[(input tensors, output tensors)]`: one pair per symbolic call of `layer`, in call order.

    The tensors are lists of `KerasTensor`s. `Operation._inbound_nodes` and its
    nodes' `input_tensors`/`output_tensors` (checked against Keras 3.15).
    """
    return [(node.input_tensors, node.output_tensors) for node in layer._inbound_nodes]


def scale_additional_loss(model, loss):
    """`loss` summed to a float scalar as `fit` treats an `add_loss` term.

    Under `tf.distribute` Keras also divides it by the number of replicas, as
    it does every `add_loss` term. `Trainer._aggregate_additional_loss`
    (checked against Keras 3.15).
    """
    return model._aggregate_additional_loss(loss)


def resume_epoch(model):
    """The epoch the next `fit` of `model` starts from when set by a restore, else None.

    `Trainer._initial_epoch` (checked against Keras 3.15): `fit` starts from it
    instead of its `initial_epoch` argument when it is set.
    """
    return model._initial_epoch


def set_resume_epoch(model, epoch):
    """Makes the running `fit` of `model` start from `epoch` (call it in `on_train_begin`).

    `Trainer._initial_epoch` (checked against Keras 3.15).
    """
    model._initial_epoch = epoch


def symbolic_build(model, data_batch):
    """Builds `model`, its metrics and optimizer from one `(x, y, sample_weight)` batch.

    `Trainer._symbolic_build` (checked against Keras 3.15).
    """
    model._symbolic_build(data_batch=data_batch)


def build_before_first_step(model, iterator=None, data_batch=None):
    """Builds `model`'s metrics, losses and optimizer from shapes before a step is traced; bool.

    Keras 3.15's TF trainer does it (`Trainer._maybe_symbolic_build`, then
    `_symbolic_build`) only under a `tf.distribute` strategy. Without one
    those variables are created while `fit` or `evaluate` traces its first
    step, and `tf.function` traces a function that created variables a second
    time: building first saves that second trace. Done while the compiled
    metrics, losses or optimizer are unbuilt (not for a layer never called,
    such as the first controller's `state_dense`); as under a strategy, an
    `evaluate` before any `fit` builds the optimizer too. Returns False when it did
    nothing: under a strategy (Keras' own build runs) or with no shapes to
    build from.

    Args:
        model: a compiled Keras model whose layers are built (a functional model).
        iterator: the epoch iterator `fit`/`evaluate` pass, or None; only the
            `element_spec` of its dataset is read (`TFEpochIterator._distributed_dataset`,
            checked against Keras 3.15): no iterator is made, so no shuffle
            is drawn and no batch is taken.
        data_batch: `(x, y, sample_weight)` of `train_on_batch`/`test_on_batch`, or None.
    """
    if model._distribute_strategy is not None:
        return False
    if all(part is None or part.built for part in (
            model._compile_metrics, model._compile_loss, model.optimizer)):
        return True
    if iterator is not None:
        data_batch = getattr(getattr(iterator, "_distributed_dataset", None), "element_spec", None)
    if data_batch is None:
        return False
    model._symbolic_build(data_batch=data_batch)
    return True


def replace_symbolic_build(model, build):
    """Makes `model.fit`/`evaluate` build the model with `build(iterator=None, data_batch=None)`.

    Instance-level override of the TF trainer's `_maybe_symbolic_build`
    (checked against Keras 3.15), which `fit`, `evaluate` and the
    `*_on_batch` methods call before their first step.
    """
    model._maybe_symbolic_build = build


# The kinds of object whose attribute skip set `saving_lib.get_attr_skipset` builds.
SAVED_KINDS = ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss")


def cache_saving_skipsets():
    """Makes Keras' `save`, `save_weights` and their loads reuse the attribute skip sets they walk with.

    Keras 3.15's `saving_lib.get_attr_skipset` stores each set under
    `saving_attr_skipset_<kind>` in its global state but looks it up under
    `saving_attr_skiplist_<kind>`, so every saved or loaded object builds a
    reference object and lists its attributes again. This stores Keras' own
    sets under the key it reads. Cheap once done; `keras.backend.clear_session()`
    drops them, so call it again after one. The first call builds Keras objects
    with variables, which starts TensorFlow's context: make any
    `MultiWorkerMirroredStrategy` before it.
    """
    from keras.src.backend.common import global_state
    from keras.src.saving import saving_lib

    for kind in SAVED_KINDS:
        key = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(key) is None:
            global_state.set_global_attribute(key, saving_lib.get_attr_skipset(kind))


class BackupAndRestoreHooks(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` with its private save hook and counters named.

    Keras calls `_save_model()` whenever a backup is due (at an epoch end, or
    every `save_freq` batches); here that calls `save_backup()`, which a
    subclass overrides. `backup_epoch`, `backup_batch`, `reset_batch_count()`
    and `count_epoch_end()` read and write the position Keras keeps for the
    backup. `BackupAndRestore._save_model`, `_current_epoch`,
    `_last_batch_seen` and `_batches_seen_since_last_saving` (checked against
    Keras 3.15).
    """

    def _save_model(self):
        self.save_backup()

    def save_backup(self):
        """Writes the backup (here: Keras' own)."""
        super()._save_model()

    @property
    def backup_epoch(self):
        """The epoch the backup records (Keras sets it to `epoch + 1` at each epoch end)."""
        return self._current_epoch

    @backup_epoch.setter
    def backup_epoch(self, epoch):
        self._current_epoch = epoch

    @property
    def backup_batch(self):
        """The last batch index Keras counted in this epoch (0 after an epoch end)."""
        return self._last_batch_seen

    def reset_batch_count(self):
        """Restarts the count of batches towards the next `save_freq` backup."""
        self._batches_seen_since_last_saving = 0

    def count_epoch_end(self, epoch):
        """Keras' bookkeeping at the end of `epoch` (the backup then records `epoch + 1`), no save."""
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0


def missing_private_attributes():
    """`["Owner.attribute", ...]`: the private Keras attributes above the installed Keras lacks.

    Builds a one-layer functional model and a `BackupAndRestore` (nothing is
    written) and looks each attribute up, and the saving functions in their
    modules; an empty list means every function of this module can work.
    """
    inputs = keras.Input((2,))
    dense = keras.layers.Dense(1)
    outputs = dense(inputs)
    model = keras.Model(inputs, outputs)
    backup = keras.callbacks.BackupAndRestore("unused_backup_dir")
    owners = {
        "KerasTensor": (outputs, ["_keras_history"]),
        "Layer": (dense, ["_flatten_layers", "_inbound_nodes"]),
        "Model": (model, ["_aggregate_additional_loss", "_initial_epoch", "_symbolic_build",
                          "_maybe_symbolic_build", "_distribute_strategy",
                          "_compile_metrics", "_compile_loss"]),
        "BackupAndRestore": (backup, ["_save_model", "_current_epoch", "_last_batch_seen",
                                      "_batches_seen_since_last_saving"]),
    }
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError as error:
        return [f"module {error.name}"]
    owners["saving_lib"] = (saving_lib, ["get_attr_skipset"])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        from keras.src.backend.tensorflow.trainer import TFEpochIterator

        epochs = TFEpochIterator(distribute_strategy=tf.distribute.get_strategy(),
                                 x=np.zeros((2, 1), "float32"), batch_size=1)
        owners["TFEpochIterator"] = (epochs, ["_distributed_dataset"])
    owners["global_state"] = (global_state, ["get_global_attribute", "set_global_attribute"])
    missing = [f"{owner}.{name}" for owner, (instance, names) in owners.items()
               for name in names if not hasattr(instance, name)]
    nodes = getattr(dense, "_inbound_nodes", [])
    missing += [f"Node.{name}" for name in ("input_tensors", "output_tensors")
                if nodes and not hasattr(nodes[0], name)]
    return missing
