"""`tf.distribute` strategies for `--strategy`.

* "default": `tf.distribute.get_strategy()` (one device).
* "mirrored": `MirroredStrategy` over every GPU, or over every logical CPU
  device when there is no GPU and more than one CPU device (tests split the
  CPU with `tf.config.set_logical_device_configuration`).
* "multi_worker": `MultiWorkerMirroredStrategy`; the cluster comes from the
  `TF_CONFIG` environment variable, one process per task, every task running
  the same command. Two layouts: workers only (`{"cluster": {"worker":
  [host:port, ...]}, "task": {"type": "worker", "index": i}}`; worker 0 is
  the chief), or a chief and workers (`{"cluster": {"chief": [host:port],
  "worker": [...]}, "task": {"type": "chief", "index": 0}}` on the chief).
  Every task trains; a worker's position in the cluster (`worker_position`:
  the chief 0, then the workers) names it in messages, in `Peers` and in its
  output directory. Other jobs ("ps", "evaluator") raise `ClusterError`. A
  worker waits at most `peer_timeout` seconds (`--peer_timeout`, default
  `PEER_TIMEOUT`) for the others to start, then raises `ClusterError`; the
  workers agree on when to stop through `Peers` (TensorFlow's
  coordination-service key-value store).
* "tpu": `TPUClusterResolver(tpu=address)` (address "" = the local TPU VM or
  the `TPU_NAME` environment variable), `experimental_connect_to_cluster`,
  `initialize_tpu_system`, then `TPUStrategy`. Not tested here (no TPU).

The batch size given to `model.fit` is the GLOBAL batch; every strategy splits
it over its replicas, and the learning rate is scaled with the global batch.
"""

import json
import os
import signal
import threading

import tensorflow as tf

from dmnn_keras.keras_compat import replace_symbolic_build, symbolic_build
from dmnn_keras.training.presets import PEER_TIMEOUT, STRATEGIES

KEY_PREFIX = "dmnn_keras/"  # of this package's keys in the coordination service
WORKER_JOBS = ("chief", "worker")  # the jobs of a cluster whose tasks train, in position order


class ClusterError(RuntimeError):
    """The workers of a multi-worker run cannot train together; the message says why and what to do."""


def make_strategy(name, tpu="", peer_timeout=PEER_TIMEOUT):
    """Returns the `tf.distribute.Strategy` called `name` (see module docstring).

    The process' SIGINT and SIGTERM handlers are kept: creating a
    `MultiWorkerMirroredStrategy` installs a native SIGTERM handler of
    TensorFlow's that would swallow the signal.
    """
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _make_strategy(name, tpu, peer_timeout)
    finally:
        for number, handler in handlers.items():
            if handler is not None:  # None: not installed from Python
                signal.signal(number, handler)


def _make_strategy(name, tpu, peer_timeout):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multi_worker":
        return _multi_worker_strategy(peer_timeout)
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")


def _multi_worker_strategy(peer_timeout):
    """`MultiWorkerMirroredStrategy` whose workers wait at most `peer_timeout` s for each other.

    TensorFlow's default waits forever, holding the GIL (no Python thread or
    signal handler runs meanwhile): here the coordination service registers
    the workers with a barrier bounded by `cluster_register_timeout_in_ms`;
    a worker silent that long is taken for dead, and at exit the chief waits
    (as long) for the others to shut down.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    _tf_config_task()  # a clear error for a TF_CONFIG TensorFlow would misread
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    if spec.jobs and context.context().coordination_service is None:
        jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=tasks)
                for job, tasks in _training_tasks(spec).items()]
        context.context().configure_coordination_service(
            service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
            cluster_register_timeout_in_ms=int(peer_timeout * 1000),
            heartbeat_timeout_in_ms=int(peer_timeout * 1000),  # a busy worker is not a dead one
            # at exit the leader (the chief) waits for the others: their shutdown needs it
            shutdown_barrier_timeout_in_ms=int(peer_timeout * 1000), coordinated_jobs=jobs)
        context.context().coordination_service.cluster_register_with_barrier = True
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    except tf.errors.DeadlineExceededError:
        addresses = [a for job in spec.jobs for a in spec.job_tasks(job)]
        raise ClusterError(
            f"{task_name()}: not every worker of TF_CONFIG ({', '.join(addresses)}) "
            f"started within peer_timeout={peer_timeout:g} s: start the same command on each "
            "of them, or raise --peer_timeout"
        ) from None


class Peers:
    """What the workers of a multi-worker run tell each other (coordination-service key-value store).

    Args:
        strategy: the run's `MultiWorkerMirroredStrategy`.
        run_key: a name of the run, the same on every worker (e.g. its output directory).
        timeout: seconds to wait for a value another worker must publish.

    `index` is this worker's position (`worker_position`, 0 = the chief) and
    `num_workers` the number of workers; keys per worker are named by position.
    """

    def __init__(self, strategy, run_key, timeout=PEER_TIMEOUT):
        from tensorflow.python.eager import context

        resolver = strategy.cluster_resolver
        tasks = _training_tasks(resolver.cluster_spec())
        self.index = worker_position(resolver.task_type, resolver.task_id, tasks)
        self.num_workers = sum(tasks.values())
        self.timeout = timeout
        self._context = context.context()
        self._prefix = f"{KEY_PREFIX}{run_key}/"
        self._done = threading.Event()
        self._watcher = None
        self.stop_request = None  # (signal number, optimizer step to stop after), once known

    def publish(self, name, value):
        """Sets `name` to `value` (a str) for every worker; False when it was already set."""
        try:
            self._context.set_config_key_value(self._prefix + name, value)
            return True
        except tf.errors.AlreadyExistsError:
            return False

    def read(self, name, timeout=None):
        """The value of `name`, waiting up to `timeout` s (default `self.timeout`) for it to be set."""
        timeout = self.timeout if timeout is None else timeout
        try:
            return self._context.get_config_key_value(self._prefix + name, int(timeout * 1000))
        except tf.errors.DeadlineExceededError:
            raise ClusterError(f"worker {self.index}: no answer from the other workers within "
                               f"peer_timeout={self.timeout:g} s ({name!r}): did one stop? "
                               "Rerun the same command on every worker.") from None

    def request_stop(self, signal_number, step):
        """Asks every worker to stop after optimizer step `step` (a request made first wins)."""
        self.publish("stop", f"{signal_number}:{step}")

    def watch_stop_requests(self):
        """Starts a thread setting `stop_request` when any worker asks to stop; `close` ends it."""

        def watch():
            while not self._done.is_set():
                try:
                    value = self._context.get_config_key_value(self._prefix + "stop", 500)
                except tf.errors.DeadlineExceededError:
                    continue
                except tf.errors.OpError:  # the service is gone: the run ends anyway
                    return
                number, step = (int(v) for v in value.split(":"))
                self.stop_request = (number, step)
                return

        self._watcher = threading.Thread(target=watch, name="dmnn_keras-stop-requests", daemon=True)
        self._watcher.start()

    def close(self):
        """Ends the thread of `watch_stop_requests`."""
        self._done.set()
        if self._watcher is not None:
            self._watcher.join()


def _training_tasks(spec):
    """`{job: number of tasks}` of the jobs of `spec` (a `tf.train.ClusterSpec`) that train.

    In `WORKER_JOBS` order. Example: `{"chief": 1, "worker": 2}` for TF_CONFIG's
    `{"cluster": {"worker": [b, c], "chief": [a]}}`.
    """
    return {job: spec.num_tasks(job) for job in WORKER_JOBS if job in spec.jobs}


def worker_position(task_type, task_id, tasks):
    """Where task `task_id` of job `task_type` stands among the workers: 0 is the chief.

    The jobs in `WORKER_JOBS` order: with a chief job the chief is 0 and
    worker i is i + 1; without one, worker i is i. `tasks` is the cluster's
    `{job: number of tasks}` (`_training_tasks`).

    Example: `worker_position("worker", 0, {"chief": 1, "worker": 2})` is 1.
    """
    earlier = WORKER_JOBS[:WORKER_JOBS.index(task_type)]
    return sum(tasks.get(job, 0) for job in earlier) + task_id


def _tf_config_task():
    """`(task_type, task_id, tasks)` of `TF_CONFIG`, checked; None when it names no cluster.

    `tasks` is its cluster's `{job: number of tasks}` in `WORKER_JOBS` order.
    Raises `ClusterError` naming TF_CONFIG for malformed JSON, a job other than
    `WORKER_JOBS`, more than one chief, or a task not in the cluster.
    """
    text = os.environ.get("TF_CONFIG", "")
    try:
        config = json.loads(text or "{}")
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("cluster") or {}, dict):
        raise ClusterError('TF_CONFIG must be a JSON object {"cluster": {job: [host:port, ...]}, '
                           f'"task": {{"type": job, "index": i}}}}. Received: TF_CONFIG={text!r}')
    cluster = config.get("cluster")
    if not cluster:
        return None
    addresses_ok = all(isinstance(addresses, list) and addresses for addresses in cluster.values())
    if set(cluster) - set(WORKER_JOBS) or not addresses_ok or len(cluster.get("chief", [0])) != 1:
        raise ClusterError(
            "TF_CONFIG's cluster must be {\"worker\": [host:port, ...]} or "
            "{\"chief\": [host:port], \"worker\": [host:port, ...]} (every task trains: parameter "
            f"servers and evaluators are not supported). Received: cluster={cluster!r}")
    tasks = _training_tasks(tf.train.ClusterSpec(cluster))
    task = config.get("task")
    fields = task if isinstance(task, dict) else {}
    task_type, task_id = fields.get("type"), fields.get("index")
    if isinstance(task_id, str) and task_id.isdigit():  # TensorFlow reads int(index) too
        task_id = int(task_id)
    if (task_type not in tasks or type(task_id) is not int  # (not a bool either)
            or not 0 <= task_id < tasks[task_type]):
        allowed = " or ".join(f'{{"type": "{job}", "index": 0{f" to {n - 1}" if n > 1 else ""}}}'
                              for job, n in tasks.items())
        raise ClusterError(f"TF_CONFIG's task must be one of its cluster's: {allowed}. "
                           f"Received: task={task!r}")
    return task_type, task_id, tasks


def worker_index():
    """This process's position among the workers of TF_CONFIG (`worker_position`; 0 without one).

    Raises `ClusterError` for a TF_CONFIG that is not one of the supported layouts.
    """
    task = _tf_config_task()
    return 0 if task is None else worker_position(*task)


def task_name():
    """This process's task as TF_CONFIG names it: "worker 1", "chief 0" ("this process" without one)."""
    task = _tf_config_task()
    return "this process" if task is None else f"{task[0]} {task[1]}"


def is_chief(strategy):
    """True on the process that writes the run's artefacts (position 0 of a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return True
    spec = resolver.cluster_spec()
    if not spec.as_dict():
        return True
    return resolver.task_type in WORKER_JOBS and worker_position(
        resolver.task_type, resolver.task_id, _training_tasks(spec)) == 0


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
            symbolic_build(model, data_batch)

    replace_symbolic_build(model, build)
    for step in ("train_step", "test_step"):
        setattr(model, step, _with_leading_axis(getattr(model, step)))
    return model


def _with_leading_axis(step):
    """Wraps a train/test step so that every log value gets a leading axis of 1."""
    from keras import ops, tree

    def wrapped(data):
        return tree.map_structure(lambda value: ops.expand_dims(value, 0), step(data))

    return wrapped
