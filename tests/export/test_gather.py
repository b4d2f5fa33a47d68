"""execution="gather" (export.batched) equals "masked"; set_execution; serialization."""

import numpy as np
import pytest
import tensorflow as tf

import dmnn_keras as dk
from dmnn_keras.export import batched, set_execution
from dmnn_keras.layers import MultiPathBlock

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)

CASES = [
    ("bottleneck", dict(filters=64, path_width=8, strides=2)),  # projection shortcut
    ("bottleneck", dict(filters=16, path_width=8)),  # identity shortcut
    ("inverted_residual", dict(filters=24, path_width=24, strides=2)),  # no shortcut
    ("inverted_residual", dict(filters=16, path_width=4, expand=False)),  # channel slices
]


@pytest.mark.parametrize("kind,kwargs", CASES)
def test_gather_equals_masked(kind, kwargs):
    rng = np.random.RandomState(0)
    x = rng.rand(8, 8, 8, 16).astype("float32")
    gates = (rng.rand(8, 4) > 0.5).astype("float32")
    gates[0], gates[1] = 1.0, 0.0
    gates[:, 3] = 1.0  # a sub-block that every sample runs
    gates[:, 2] = 0.0  # and one that none runs
    block = MultiPathBlock(kind, groups=4, **kwargs)
    masked = block([x, gates]).numpy()
    block.execution = "gather"
    np.testing.assert_allclose(block([x, gates]).numpy(), masked, atol=1e-5)
    graph = tf.function(lambda a, b: block([a, b]))
    np.testing.assert_allclose(graph(x, gates).numpy(), masked, atol=1e-5)
    off = np.zeros_like(gates)  # every sub-block skipped
    np.testing.assert_allclose(graph(x, off).numpy(), _masked(block, x, off), atol=1e-5)


@pytest.mark.parametrize("kind,kwargs", CASES)
@pytest.mark.parametrize("strategy", ["pattern", "sub_block"])
def test_gather_strategies_equal_masked(kind, kwargs, strategy):
    """Both ways of gathering give the masked outputs, eagerly and with an unknown batch."""
    rng = np.random.RandomState(1)
    x = rng.rand(16, 8, 8, 16).astype("float32")
    gates = (rng.rand(16, 4) > 0.5).astype("float32")
    gates[:3] = 0.0  # several samples with no sub-block on
    block = MultiPathBlock(kind, groups=4, **kwargs)
    masked = block([x, gates]).numpy()
    gathered = batched.gather_execution(block, x, gates, strategy)
    np.testing.assert_allclose(gathered.numpy(), masked, atol=1e-5)
    spec = [tf.TensorSpec([None, 8, 8, 16]), tf.TensorSpec([None, 4])]
    graph = tf.function(lambda a, b: batched.gather_execution(block, a, b, strategy),
                        input_signature=spec)
    np.testing.assert_allclose(graph(x, gates).numpy(), masked, atol=1e-5)
    np.testing.assert_allclose(graph(x[:1], gates[:1]).numpy(), masked[:1], atol=1e-5)


def test_gather_picks_pattern_for_large_activations(monkeypatch):
    """"pattern" for mixed gates once batch*H*W*C >= 1.2x the sub-block weights.

    "sub_block" below that, when every sample has the same gates, or with > 4 groups.
    """
    block = MultiPathBlock("bottleneck", filters=16, groups=4, path_width=8)
    x = np.random.RandomState(2).rand(1, 4, 4, 16).astype("float32")
    gates = np.ones((1, 4), "float32")
    block([x, gates])
    mixed = lambda n: np.array([[1, 0, 1, 0], [0, 1, 1, 1]] * n, "float32")[:n]
    per_sample = 4 * 4 * 16
    threshold = int(np.ceil(1.2 * block.path_weights / per_sample))
    calls = []
    for name in ("gather_by_pattern", "gather_by_sub_block"):
        original = getattr(batched, name)
        monkeypatch.setattr(batched, name, lambda *a, name=name, original=original:
                            calls.append(name) or original(*a))
    block.execution = "gather"
    for batch in (threshold - 1, threshold):
        block([np.repeat(x, batch, 0), mixed(batch)])
    block([np.repeat(x, threshold, 0), np.repeat(gates, threshold, 0)])  # one pattern: no sorting
    assert calls == ["gather_by_sub_block", "gather_by_pattern", "gather_by_sub_block"]
    calls.clear()
    spec = [tf.TensorSpec([None, 4, 4, 16]), tf.TensorSpec([None, 4])]
    tf.function(lambda a, b: block([a, b]), input_signature=spec).get_concrete_function()
    assert sorted(calls) == ["gather_by_pattern", "gather_by_sub_block"]  # tf.cond on the batch
    wide = MultiPathBlock("bottleneck", filters=16, groups=5, path_width=4, execution="gather")
    wide([np.repeat(x, 64, 0), np.ones((64, 5), "float32")])
    calls.clear()
    monkeypatch.setattr(batched, "gather_by_sub_block",
                        lambda b, a, g: calls.append("sub_block") or a)
    wide([np.repeat(x, 64, 0), np.ones((64, 5), "float32")])
    assert calls == ["sub_block"]
    with pytest.raises(ValueError, match="strategy"):
        batched.gather_execution(block, x, gates, "sorted")


def _masked(block, x, gates):
    block.execution = "masked"
    try:
        return block([x, gates]).numpy()
    finally:
        block.execution = "gather"


def test_gather_model_and_serialization(tmp_path):
    # 2 sub-blocks: 4 patterns per block in the predict graph, not 16 (the strategies at 4
    # sub-blocks are checked block by block above).
    model = dk.DMNNResNet(groups=2, seed=0)
    for c in model.controllers:
        c.logits_dense.bias.assign(np.zeros(c.groups, "float32"))
        c.logits_dense.kernel.assign(c.logits_dense.kernel.numpy() * 30)
    images = next(iter(dk.data.load_dataset("cifar10", "test", batch_size=32, training=False,
                                            max_examples=32)))[0].numpy()
    masked = model.predict(images, verbose=0)
    assert set_execution(model, "gather") == 4
    np.testing.assert_allclose(model.predict(images, verbose=0), masked, atol=1e-4)
    block = model.get_layer("conv2_block1")
    config = block.get_config()
    assert config["execution"] == "gather"
    assert MultiPathBlock.from_config(config).execution == "gather"
    with pytest.raises(ValueError, match="execution"):
        set_execution(model, "sparse")
    with pytest.raises(ValueError, match="execution"):
        MultiPathBlock("bottleneck", 16, 4, 8, execution="sparse")


def test_gather_trains_as_masked():
    """In training the block runs "masked" (BatchNorm batch statistics over the whole batch)."""
    block = MultiPathBlock("bottleneck", filters=16, groups=2, path_width=4, execution="gather")
    x = tf.constant(np.random.RandomState(1).rand(4, 4, 4, 16).astype("float32"))
    gates = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    gathered = block([x, gates], training=True).numpy()
    block.execution = "masked"
    np.testing.assert_allclose(block([x, gates], training=True).numpy(), gathered, atol=1e-5)
