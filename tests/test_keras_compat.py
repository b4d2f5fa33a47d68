"""The private Keras attributes `dmnn_keras.keras_compat` wraps exist in the installed Keras, and work."""

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
