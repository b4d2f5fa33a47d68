"""Where each worker of a TF_CONFIG cluster stands (only TF_CONFIG is read: no cluster starts)."""

import json
import types

import pytest
import tensorflow as tf

from dmnn_keras.training.strategy import (
    ClusterError, Peers, is_chief, task_name, worker_index,
)

WORKERS_ONLY = {"worker": ["h0:1", "h1:1", "h2:1"]}
CHIEF_AND_WORKERS = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}


def positions(monkeypatch, cluster):
    """`[(worker_index(), Peers' index, Peers' num_workers, is_chief)]` per task of `cluster`."""
    found = []
    for job, addresses in cluster.items():
        for index in range(len(addresses)):
            monkeypatch.setenv("TF_CONFIG", json.dumps(
                {"cluster": cluster, "task": {"type": job, "index": index}}))
            # what `Peers` and `is_chief` read of a MultiWorkerMirroredStrategy
            strategy = types.SimpleNamespace(
                cluster_resolver=tf.distribute.cluster_resolver.TFConfigClusterResolver())
            peers = Peers(strategy, "run")
            found.append((worker_index(), peers.index, peers.num_workers, is_chief(strategy)))
    return found


def test_every_worker_has_its_own_position_and_the_chief_is_0(monkeypatch):
    assert positions(monkeypatch, WORKERS_ONLY) == [
        (0, 0, 3, True), (1, 1, 3, False), (2, 2, 3, False)]
    # chief, worker 0, worker 1: worker i is i + 1 (worker 0 is not the chief)
    assert positions(monkeypatch, CHIEF_AND_WORKERS) == [
        (0, 0, 3, True), (1, 1, 3, False), (2, 2, 3, False)]
    # an index written as a string, as TensorFlow's resolver accepts it (int(index))
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": CHIEF_AND_WORKERS, "task": {"type": "worker", "index": "1"}}))
    assert worker_index() == 2
    assert task_name() == "worker 1"  # messages name the task as TF_CONFIG does, not its position
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert worker_index() == 0  # no cluster: one process
    assert task_name() == "this process"


LAYOUTS = ("TF_CONFIG's cluster must be {\"worker\": [host:port, ...]} or {\"chief\": [host:port], "
           "\"worker\": [host:port, ...]} (every task trains: parameter servers and evaluators are "
           "not supported). Received: cluster=")
WORKER_TASKS = ("TF_CONFIG's task must be one of its cluster's: "
                '{"type": "worker", "index": 0 to 2}. ')


@pytest.mark.parametrize("config, message", [
    ({"cluster": {**CHIEF_AND_WORKERS, "ps": ["h3:1"]}, "task": {"type": "worker", "index": 0}},
     LAYOUTS + "{'chief': ['h0:1'], 'worker': ['h1:1', 'h2:1'], 'ps': ['h3:1']}"),
    ({"cluster": {"chief": ["h0:1", "h1:1"], "worker": ["h2:1"]},
      "task": {"type": "chief", "index": 0}},
     LAYOUTS + "{'chief': ['h0:1', 'h1:1'], 'worker': ['h2:1']}"),
    ({"cluster": CHIEF_AND_WORKERS, "task": {"type": "evaluator", "index": 0}},
     "TF_CONFIG's task must be one of its cluster's: {\"type\": \"chief\", \"index\": 0} or "
     "{\"type\": \"worker\", \"index\": 0 to 1}. Received: task={'type': 'evaluator', 'index': 0}"),
    ({"cluster": WORKERS_ONLY, "task": {"type": "worker", "index": 3}},
     WORKER_TASKS + "Received: task={'type': 'worker', 'index': 3}"),
    ({"cluster": WORKERS_ONLY, "task": {"type": "worker", "index": "one"}},
     WORKER_TASKS + "Received: task={'type': 'worker', 'index': 'one'}"),
    ({"cluster": WORKERS_ONLY}, WORKER_TASKS + "Received: task=None"),
    ("{'cluster': ", "TF_CONFIG must be a JSON object {\"cluster\": {job: [host:port, ...]}, "
     "\"task\": {\"type\": job, \"index\": i}}. Received: TF_CONFIG=\"{'cluster': \""),
])
def test_an_unsupported_tf_config_is_refused_naming_it(monkeypatch, config, message):
    monkeypatch.setenv("TF_CONFIG", config if isinstance(config, str) else json.dumps(config))
    with pytest.raises(ClusterError) as error:
        worker_index()
    assert str(error.value) == message
