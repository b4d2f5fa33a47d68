"""`tf.distribute` strategies for `--strategy`.

* "default": `tf.distribute.get_strategy()` (one device).
* "mirrored": `MirroredStrategy` over every GPU, or over every logical CPU
  device when there is no GPU and more than one CPU device (tests split the
  CPU with `tf.config.set_logical_device_configuration`).
* "multi_worker": `MultiWorkerMirroredStrategy`; the cluster comes from the
  `TF_CONFIG` environment variable (`{"cluster": {"worker": [host:port, ...]},
  "task": {"type": "worker", "index": i}}`), one process per worker, every
  worker running the same command. Worker 0 is the chief.
* "tpu": `TPUClusterResolver(tpu=address)` (address "" = the local TPU VM or
  the `TPU_NAME` environment variable), `experimental_connect_to_cluster`,
  `initialize_tpu_system`, then `TPUStrategy`. Not tested here (no TPU).

The batch size given to `model.fit` is the GLOBAL batch; every strategy splits
it over its replicas, and the learning rate is scaled with the global batch.
"""

import json
import os

import tensorflow as tf

from dmnn_keras.training.presets import STRATEGIES


def make_strategy(name, tpu=""):
    """Returns the `tf.distribute.Strategy` called `name` (see module docstring)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")


def worker_index():
    """This process's worker index from `TF_CONFIG` (0 without a cluster)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return int(task.get("index", 0)) if task.get("type", "worker") in ("worker", "chief") else 0


def is_chief(strategy):
    """True on the process that writes the run's artefacts."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if not resolver.cluster_spec().as_dict():
        return True
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def patch_multi_worker_build(model, strategy):
    """Works around two Keras 3.15 bugs of `fit` under MultiWorkerMirroredStrategy.

    1. Metric logs: Keras reduces each step's logs with
       `strategy.reduce("MEAN", value, axis=0)`, which fails for scalars
       ("Invalid reduction dimension 0"). The train and test steps here return
       every log value with a leading axis of 1, so that reduction averages it
       over all replicas of all workers and gives back the scalar.
    2. Keras issue #20585 (the symbolic build before `fit`), below.

    Keras 3.15's TF trainer builds the model before `fit` by reducing the first
    distributed batch with `strategy.reduce`, which `MultiWorkerMirroredStrategy`
    cannot do for a nested `PerReplica` batch ("Attempt to convert a value
    (PerReplica...) to a Tensor"). The build only needs shapes, so this
    instance-level override builds from this worker's local part of the batch
    instead. Only applied under `--strategy=multi_worker`.
    """
    from keras import tree

    def build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build
    for step in ("train_step", "test_step"):
        setattr(model, step, _with_leading_axis(getattr(model, step)))
    return model


def _with_leading_axis(step):
    """Wraps a train/test step so that every log value gets a leading axis of 1."""
    from keras import ops, tree

    def wrapped(data):
        return tree.map_structure(lambda value: ops.expand_dims(value, 0), step(data))

    return wrapped
