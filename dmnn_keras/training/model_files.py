"""Model files a user hands us: `.keras` archives loaded in safe mode, `.tflite` FlatBuffers checked.

Errors say what the file is and what to do, e.g. a truncated `.keras` file
(Keras itself answers "File not found") or a `.keras` file where a `.tflite`
is needed.
"""

import os
import zipfile

KERAS_MEMBERS = ("config.json", "model.weights.h5")
TFLITE_IDENTIFIER = b"TFL3"  # FlatBuffer file identifier, bytes 4-8
EXPORT_COMMAND = ("python -c \"import keras, dmnn_keras as dk; "
                  "dk.export.to_tflite(keras.models.load_model('{path}'), '{tflite}')\"")


class ModelFileError(ValueError):
    """A model file that is missing or is not what it should be; the message says what to do."""


def _check_exists(path, name):
    if not path or not os.path.isfile(path):
        raise ModelFileError(f"{name} must be an existing file. Received: {name}={path!r}")


def is_keras_archive(path):
    """True when `path` is a complete zip archive holding a Keras model."""
    try:
        with zipfile.ZipFile(path) as archive:
            return all(m in archive.namelist() for m in KERAS_MEMBERS) and archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def load_keras_model(path, name="model_path", **kwargs):
    """`keras.models.load_model(path, safe_mode=True)` with clear errors for missing or corrupt files.

    Safe mode refuses the archives that would run code while loading
    (`Lambda` layers); dmnn_keras' own layers are registered on import.
    """
    _check_exists(path, name)
    if not is_keras_archive(path):
        raise ModelFileError(f"{path} is not a valid .keras archive: truncated or corrupt? "
                         "Copy or save the model again.")
    import keras

    import dmnn_keras  # noqa: F401  (registers the layers before loading)

    return keras.models.load_model(path, safe_mode=True, **kwargs)


def trained_preset_choices():
    """What a trained preset may be, for error messages: the shipped names or a directory."""
    from dmnn_keras.presets import list_presets

    return (f"a trained preset: a shipped preset's name ({', '.join(list_presets())}) or a "
            "directory written by dmnn_keras.save_to_preset")


def load_model_or_preset(path, name="model_path"):
    """A `.keras` file (`load_keras_model`) or a trained preset: a shipped preset's name
    (`dmnn_keras.presets.list_presets()`) or a directory written by `save_to_preset`."""
    from dmnn_keras.presets import from_preset, is_preset

    if is_preset(path) or os.path.isdir(path):  # a directory without a config: from_preset says so
        return from_preset(path)
    if not path or not os.path.isfile(path):
        raise ModelFileError(f"{name} must be an existing .keras file or "
                             f"{trained_preset_choices()}. Received: {name}={path!r}")
    return load_keras_model(path, name)


def check_tflite_file(path, name="model"):
    """Raises a clear error unless `path` is a TFLite FlatBuffer (e.g. a `.keras` file instead)."""
    _check_exists(path, name)
    with open(path, "rb") as f:
        head = f.read(8)
    if zipfile.is_zipfile(path):
        tflite = os.path.splitext(path)[0] + ".tflite"
        raise ModelFileError(f"{path} is a .keras model; this needs a .tflite model. Export it first: "
                         + EXPORT_COMMAND.format(path=path, tflite=tflite))
    if head[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(f"{path} is not a .tflite model (a TFLite FlatBuffer): truncated or "
                         "corrupt? Export it again with dmnn_keras.export.to_tflite.")
