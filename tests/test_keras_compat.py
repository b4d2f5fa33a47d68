"""The private Keras attributes `dmnn_keras.keras_compat` wraps exist in the installed Keras."""

import keras

from dmnn_keras import keras_compat


def test_installed_keras_has_every_private_attribute_the_compat_module_uses():
    missing = keras_compat.missing_private_attributes()
    assert not missing, (
        f"Keras {keras.__version__} lacks {', '.join(missing)}, which dmnn_keras.keras_compat "
        f"uses (checked against Keras {keras_compat.CHECKED_KERAS}): update the function that "
        "reads each one before moving the Keras pin in setup.cfg"
    )
