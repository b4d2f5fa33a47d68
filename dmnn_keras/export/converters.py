"""The converter registry and the context converters receive while a model is traced.

A converter turns one Keras layer into plain TensorFlow ops. Converters are
kept in a registry keyed by layer class (looked up along the MRO). A
converter is `fn(layer, inputs, ctx) -> tensor or list of tensors`, one per
output of the layer's node in the functional graph (trailing outputs that
inference does not need, such as category heads, may be omitted). Register a
new gating method's layers with::

    from dmnn_keras.export import register_converter

    @register_converter(MyGateLayer)
    def _convert_my_gate(layer, inputs, ctx):
        x = inputs[0]
        ...                              # plain TF ops, weights via ctx.const()
        return [gates, other_output]

    @register_converter(MyGatedBlock)
    def _convert_my_block(layer, inputs, ctx):
        x, gates = inputs
        ctx.record_gates(layer, gates)   # -> "gates" / "executed_flops" outputs
        if ctx.dynamic:
            ...                          # tf.cond per gate, weights created
                                         # inside the branch functions
        ...

`ctx.record_gates(layer, gates)` expects `layer.compute_flops()` to return
`{"always_on": MACs, "paths": [MACs per gate]}` and `gates` `[1, len(paths)]`;
the executed FLOPs are then `always_on + sum_l gates_l . paths_l`
(`dmnn_keras.flops.executed_flops`, as in `dmnn_keras.profile`). `ctx.fold_next_bn(conv_layer)` gives
the BatchNorm folded into a convolution (`dmnn_keras.export.batch_norm_folding`).
"""

import numpy as np
import tensorflow as tf

_CONVERTERS = {}


def register_converter(layer_class):
    """Decorator: `fn(layer, inputs, ctx)` converts layers of `layer_class` (and subclasses)."""

    def decorator(fn):
        _CONVERTERS[layer_class] = fn
        return fn

    return decorator


def get_converter(layer):
    """The converter registered for the layer's class or its nearest base class, or None."""
    for cls in type(layer).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    return None


def registered_layer_classes():
    """The layer classes that have a converter."""
    return tuple(_CONVERTERS)


class ExportContext:
    """State shared by converters while one model is traced.

    Attributes:
        mode: "dynamic" or "static".
        dynamic: `mode == "dynamic"`.
        gates: list of `(layer, gates [1, G])` recorded by gated blocks, in order.

    A controller converter registers the gates it knows at export
    (`set_known_gates`: forced, or fixed by `fix_constant_gates`); a block converter
    reads them (`known_gates`) and runs those sub-blocks without `tf.cond`.
    """

    def __init__(self, mode, folded_bns):
        self.mode = mode
        self.dynamic = mode == "dynamic"
        self.gates = []
        self._folded_bns = folded_bns  # conv name -> BN layer folded into it
        self._known_gates = {}  # id(gates tensor) -> (the tensor, its values known at export)

    def record_gates(self, layer, gates):
        """Registers the gates `[1, G]` a gated layer executed (for the outputs)."""
        self.gates.append((layer, gates))

    def set_known_gates(self, gates, values):
        """Registers the gates of `gates` `[1, G]` known at export: G values 1.0, 0.0 or None."""
        self._known_gates[id(gates)] = (gates, tuple(values))

    def known_gates(self, gates):
        """The values of `gates` `[1, G]` known at export (None: decided at run time)."""
        known = self._known_gates.get(id(gates))
        return known[1] if known is not None else (None,) * int(gates.shape[-1])

    def fold_next_bn(self, conv):
        """The BatchNorm layer folded into `conv` (None if none)."""
        return self._folded_bns.get(conv.name)

    def is_folded(self, bn):
        """Whether BatchNorm layer `bn` is folded into the convolution before it."""
        return any(folded is bn for folded in self._folded_bns.values())

    @staticmethod
    def const(array):
        """A float32 `tf.constant` (create it where it is used, e.g. inside a branch)."""
        return tf.constant(np.asarray(array, dtype=np.float32))
