"""The private Keras attributes `dmnn_keras.keras_compat` wraps exist in the installed Keras, and work."""

import functools

import h5py
import keras
import numpy as np

from dmnn_keras import keras_compat


def test_installed_keras_has_every_private_attribute_the_compat_module_uses():
    missing = keras_compat.missing_private_attributes()
    assert not missing, (
        f"Keras {keras.__version__} lacks {', '.join(missing)}, which dmnn_keras.keras_compat "
        f"uses (checked against Keras {keras_compat.CHECKED_KERAS}): update the function that "
        "reads each one before moving the Keras pin in setup.cfg"
    )


def test_cached_skipsets_spare_the_reference_layers_and_save_the_same_weights(tmp_path,
                                                                              monkeypatch):
    from keras.src.backend.common import global_state
    from keras.src.layers.layer import Layer

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    built = []
    layer_init = Layer.__init__
    monkeypatch.setattr(Layer, "__init__", lambda self, *a, **k: (
        built.append(type(self)), layer_init(self, *a, **k))[1])

    def save(name):
        built.clear()
        model.save_weights(tmp_path / name)
        return list(built)

    for kind in keras_compat.SAVED_KINDS:  # as after keras.backend.clear_session()
        global_state.set_global_attribute(f"saving_attr_skiplist_{kind}", None)
    assert save("first.weights.h5")  # Keras' own: a reference Layer per saved object
    assert save("again.weights.h5")  # ... every time
    keras_compat.cache_saving_skipsets()
    assert save("cached.weights.h5") == []
    def datasets(name):
        found = {}
        with h5py.File(tmp_path / name) as f:
            f.visititems(lambda key, item: found.update(
                {key: item[()]} if isinstance(item, h5py.Dataset) else {}))
        return found

    first, cached = datasets("first.weights.h5"), datasets("cached.weights.h5")
    assert first.keys() == cached.keys() and len(first) == 4
    for name in first:
        np.testing.assert_array_equal(first[name], cached[name])


def _traced_steps(model):
    """`({"train": n, "test": n}, weights)`: how often `fit` and `evaluate` trace a step of
    `model`, and its weights after `fit` on shuffled batches."""
    import tensorflow as tf

    traces = {"train": 0, "test": 0}
    for kind in traces:
        step = getattr(model, f"{kind}_step")
        setattr(model, f"{kind}_step", lambda data, step=step, kind=kind: (
            traces.__setitem__(kind, traces[kind] + 1), step(data))[1])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = np.arange(8) % 2
    shuffled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(8, seed=0).batch(4)
    model.fit(shuffled, epochs=2, verbose=0)
    model.evaluate(x, y, batch_size=4, verbose=0)
    return traces, model.get_weights()


def test_fit_and_evaluate_trace_a_step_once_without_a_strategy():
    from dmnn_keras import DynamicModel

    def model():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        return DynamicModel(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(inputs)))

    traces, weights = _traced_steps(model())
    assert traces == {"train": 1, "test": 1}
    # Keras' own hook builds the metrics and optimizer inside the first traced step, and
    # tf.function traces a function that created variables twice.
    keras_build = model()
    keras_compat.replace_symbolic_build(
        keras_build, functools.partial(keras.Model._maybe_symbolic_build, keras_build))
    keras_traces, keras_weights = _traced_steps(keras_build)
    assert keras_traces == {"train": 2, "test": 1}
    # The same training: the build reads shapes only (no batch taken, no shuffle drawn).
    for ours, theirs in zip(weights, keras_weights):
        np.testing.assert_array_equal(ours, theirs)


def test_clone_model_gives_a_plain_functional_and_from_config_the_library_model():
    """What docs/troubleshooting.md says of `keras.models.clone_model`: Keras drops the subclass."""
    import dmnn_keras as dk

    model = dk.EarlyExitModel(dk.ResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.125,
                                        input_shape=(32, 32, 3), num_classes=10))
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    clone = keras.models.clone_model(model)
    assert isinstance(clone, keras.Model) and not isinstance(clone, dk.DynamicModel)
    assert isinstance(clone.predict(x, verbose=0), dict)  # the training outputs: logits and exits
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    assert type(copy) is dk.EarlyExitModel
    np.testing.assert_array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))
