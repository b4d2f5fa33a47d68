"""Trained presets, keras-hub style: a directory with a model's config, weights, metadata and card.

A preset directory holds the files keras-hub's `save_to_preset` writes
(`keras_hub/src/utils/preset_utils.py`), under the same names:

    config.json        `keras.saving.serialize_keras_object(model)` without
                       its build and compile configs: the constructor arguments
    model.weights.h5   `model.save_weights`: weights only, no optimizer state
    metadata.json      keras and dmnn_keras versions, parameter count, date
                       saved, and the caller's figures (e.g. "metrics")
    README.md          the model card: YAML front matter, how to load it, the
                       caller's text (how it was trained, what it measured)

The shipped presets are the directories beside this file (package data), made
from the trained models of `benchmarks/cifar10_pareto.py` by
`python -m benchmarks.make_presets ROW`; `list_presets()` names them.
"""

import datetime
import json
import os

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
PRESETS_DIR = os.path.dirname(os.path.abspath(__file__))


def list_presets():
    """The names of the presets shipped with dmnn_keras, sorted."""
    return sorted(name for name in os.listdir(PRESETS_DIR)
                  if os.path.isfile(os.path.join(PRESETS_DIR, name, CONFIG_FILE)))


def is_preset(preset):
    """Whether `preset` is a shipped preset's name or a directory holding a preset's config."""
    return isinstance(preset, (str, os.PathLike)) and (
        os.fspath(preset) in list_presets()
        or os.path.isfile(os.path.join(preset, CONFIG_FILE)))


def preset_dir(preset):
    """The directory of `preset`: a shipped preset's name or the path of a preset directory."""
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError("preset must be a preset name or a directory path. "
                         f"Received: preset={preset!r}")
    preset = os.fspath(preset)
    if preset in list_presets():
        return os.path.join(PRESETS_DIR, preset)
    if os.path.isdir(preset):
        missing = [file for file in (CONFIG_FILE, WEIGHTS_FILE)
                   if not os.path.isfile(os.path.join(preset, file))]
        if missing:
            raise ValueError(f"{preset} is not a preset directory: it has no {' or '.join(missing)} "
                             "(dmnn_keras.save_to_preset writes one)")
        return preset
    raise ValueError(f"Unknown preset {preset!r}: the shipped presets are {list_presets()}, or pass "
                     "the path of a directory written by dmnn_keras.save_to_preset (a .keras file "
                     "loads with keras.models.load_model). Received: preset=" + repr(preset))


def load_metadata(preset):
    """`metadata.json` of `preset` (a name or a directory) as a dict."""
    with open(os.path.join(preset_dir(preset), METADATA_FILE), encoding="utf-8") as f:
        return json.load(f)


def from_preset(preset, load_weights=True, **kwargs):
    """The model of a preset: built from its `config.json`, with its weights.

    The model is built from its constructor arguments, as `keras-hub`'s
    `Backbone.from_preset` does: nothing of its training comes with it (no
    optimizer state, no distillation teacher), and it is not compiled. The
    config is read in Keras' safe mode, as `.keras` files are: a preset from
    someone else runs no code of theirs while loading.

    Args:
        preset: the name of a shipped preset (`list_presets()`) or the path of
            a directory written by `save_to_preset`.
        load_weights: False builds the architecture with fresh weights.
        **kwargs: constructor arguments that replace the preset's, as
            keras-hub's `from_preset(preset, **kwargs)`; e.g.
            `include_top=False, pooling="avg"`: the backbone, its gates and
            controllers, without the classifier (weights copied by layer name);
            `num_classes=n` (any preset, early-exit ones too): every weight
            but the class heads', which start fresh when `n` differs (the
            classifier, a DMNN's difficulty head, the exit heads).

    Returns:
        the model, e.g. a `DynamicResNet`.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.from_preset("dmnn_resnet_cifar10")  # trained on CIFAR-10: 32x32 RGB in [0, 255]
    images = np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    model(images).shape  # (2, 10)
    dk.profile(model, images)["executed_flops"].shape  # (2,)
    backbone = dk.from_preset("dmnn_resnet_cifar10", include_top=False, pooling="avg")
    backbone(images).shape  # (2, 512): features, for a head of your own
    dk.from_preset("exits_resnet_cifar10", num_classes=3)(images).shape  # (2, 3): new heads
    ```
    """
    import keras

    from dmnn_keras.models.dynamic_model import load_builder_weights

    directory = preset_dir(preset)
    if "num_classes" in kwargs:
        from dmnn_keras.warm_start import with_classes

        if kwargs.get("include_top") is False:
            raise ValueError(
                "from_preset's num_classes sizes the class heads of a model with its classifier; "
                "without it (include_top=False) the preset's difficulty head, which its gate "
                "controllers read, is kept as trained. Received: include_top=False, "
                f"num_classes={kwargs['num_classes']!r}")
        num_classes = kwargs.pop("num_classes")
        return with_classes(from_preset(preset, load_weights, **kwargs), num_classes)
    with open(os.path.join(directory, CONFIG_FILE), encoding="utf-8") as f:
        config = json.load(f)
    unknown = sorted(set(kwargs) - set(config["config"]))
    if unknown:
        raise ValueError(
            "from_preset's keywords must be constructor arguments of the preset "
            f"({sorted(config['config'])}). Received: "
            + ", ".join(f"{key}={kwargs[key]!r}" for key in unknown)
        )
    config["config"].update(kwargs)
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if load_weights and kwargs:
        load_builder_weights(  # by layer name: the top may be left out
            model, directory,
            received=f"from_preset({preset!r}, "
            + ", ".join(f"{key}={value!r}" for key, value in kwargs.items()) + ")",
            remedy="Keywords that change the shape of a layer's weights (e.g. groups, "
            "width_multiplier) need load_weights=False",
        )
    elif load_weights:
        model.load_weights(os.path.join(directory, WEIGHTS_FILE))
    return model


def save_to_preset(model, preset, card="", metadata=None):
    """Writes `model` as a preset directory (config, weights, metadata, card), keras-hub's layout.

    Args:
        model: a model of this library (or any registered, serializable
            Keras model); only its architecture and weights are saved.
        preset: the directory to write (created if missing; its preset
            files are overwritten).
        card: Markdown for the model card (`README.md`) after its title and
            loading snippet: how the model was trained and what it measured.
        metadata: dict added to `metadata.json` (JSON-serializable), e.g.
            `{"metrics": {"top1": 0.71}}`.

    Returns:
        the directory written.

    Example:
    ```python
    import os
    import dmnn_keras as dk
    dk.save_to_preset(dk.DMNNResNet(groups=2), "my_dmnn", card="Untrained.")
    sorted(os.listdir("my_dmnn"))  # ['README.md', 'config.json', 'metadata.json', 'model.weights.h5']
    dk.from_preset("my_dmnn").get_config()["groups"]  # 2
    ```
    """
    import keras

    import dmnn_keras

    directory = os.fspath(preset)
    os.makedirs(directory, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    for key in ("build_config", "compile_config"):  # as keras-hub: the architecture only
        config.pop(key, None)
    name = os.path.basename(os.path.normpath(directory))
    files = {
        CONFIG_FILE: json.dumps(config, indent=2),
        METADATA_FILE: json.dumps({
            "keras_version": keras.version(),
            "dmnn_keras_version": dmnn_keras.__version__,
            "parameter_count": model.count_params(),
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            **(metadata or {}),
        }, indent=2),
        CARD_FILE: model_card(name, config["class_name"], card),
    }
    for file, text in files.items():
        with open(os.path.join(directory, file), "w", encoding="utf-8") as f:
            f.write(text + "\n")
    model.save_weights(os.path.join(directory, WEIGHTS_FILE))
    return directory


def model_card(name, class_name, text):
    """The card's Markdown: front matter (as keras-hub's cards), title, loading snippet, `text`."""
    return (f"---\nlibrary_name: keras\ntags:\n- dmnn_keras\n- image-classification\n---\n"
            f"# {name}\n\nA dmnn_keras `{class_name}`. Load it with\n\n"
            f"```python\nimport dmnn_keras as dk\nmodel = dk.from_preset({name!r})  "
            f"# or the path of this directory\n```\n\n{text}").rstrip()
