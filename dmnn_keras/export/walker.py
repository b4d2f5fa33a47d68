"""Walking a functional Keras graph layer by layer with the registered converters."""

from dmnn_keras.export.converters import get_converter
from dmnn_keras.keras_compat import layer_calls


def walk(layers, env, ctx):
    """Converts every call of `layers` (in order) whose inputs are in `env` and outputs are not.

    `env` maps `id(KerasTensor)` to its TF value; the outputs are added to it.
    """
    for layer in layers:
        for ins, outs in layer_calls(layer):
            if not ins or any(id(t) not in env for t in ins):
                continue
            if all(id(t) in env for t in outs):
                continue
            result = get_converter(layer)(layer, [env[id(t)] for t in ins], ctx)
            result = list(result) if isinstance(result, (list, tuple)) else [result]
            for t, value in zip(outs, result):
                env[id(t)] = value
    return env


def layers_for(model, targets):
    """The layers of `model` whose calls the symbolic `targets` depend on, in the model's order."""
    needed, chosen = {id(t) for t in targets}, set()
    for layer in reversed(model.layers):  # model.layers is in topological order
        for ins, outs in layer_calls(layer):
            if any(id(t) in needed for t in outs):
                chosen.add(id(layer))
                needed.update(id(t) for t in ins)
    return [layer for layer in model.layers if id(layer) in chosen]
