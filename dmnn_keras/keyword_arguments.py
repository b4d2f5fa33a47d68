"""`check_keyword_arguments`: unknown keyword arguments are a `TypeError` with the closest valid name.

Keras' functional `Model.__init__` keeps `name` and `trainable` and silently
drops any other keyword, so a typo such as `DMNNResNet50(flops_targt=0.3)`
would build a model at the default target. Keras' `Layer.__init__` rejects
unknown keywords (a `ValueError` without a hint); our layers call this first
so every dmnn_keras constructor fails the same way, naming the closest name.
"""

import difflib
import inspect

import keras

# What the Keras base classes take from **kwargs.
MODEL_ARGUMENTS = ("name", "trainable")
LAYER_ARGUMENTS = tuple(
    name for name in inspect.signature(keras.layers.Layer.__init__).parameters
    if name not in ("self", "kwargs")
) + ("input_shape", "input_dim")  # popped (with a warning) by `Layer.__init__`


def _init_arguments(cls):
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def check_keyword_arguments(owner, cls, kwargs, passed_on):
    """Raises TypeError for the first key of `kwargs` that the Keras base would not take.

    Args:
        owner: the object being constructed.
        cls: the class whose `__init__` calls this, before handing `kwargs` to
            its Keras base; the valid names are the `__init__` arguments of
            `type(owner)` and of its bases down to `cls`, plus `passed_on`.
        kwargs: the `**kwargs` that `cls.__init__` received.
        passed_on: names the Keras base takes (`MODEL_ARGUMENTS` or `LAYER_ARGUMENTS`).

    Example:
    ```python
    import dmnn_keras as dk
    dk.DMNNResNet(flops_targt=0.3)
    # TypeError: DynamicResNet got an unexpected keyword argument 'flops_targt'
    # (did you mean 'flops_target'?). Received: flops_targt=0.3. Valid arguments: ...
    ```
    """
    unknown = [name for name in kwargs if name not in passed_on]
    if not unknown:
        return
    mro = type(owner).__mro__
    valid = {name for klass in mro[:mro.index(cls) + 1] for name in _init_arguments(klass)}
    valid = sorted(valid | set(passed_on))
    name = unknown[0]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise TypeError(
        f"{type(owner).__name__} got an unexpected keyword argument {name!r}{hint}. "
        f"Received: {name}={kwargs[name]!r}. Valid arguments: {', '.join(valid)}"
    )
