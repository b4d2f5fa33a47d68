"""The gating-method interface (`GatingMethod`) and the registry of methods.

A gating method is one object: how it gates a block (its controller and its
block layer), its resource loss, what it supports, its export converters and
its pruning rule. Models look it up by their `gating=` name; adding a method
is one module plus one `register_method` line in `dmnn_keras/methods/__init__.py`.
"""

from dmnn_keras.layers.resource_loss import ResourceLoss


class GatingMethod:
    """One way of gating the blocks of a network; subclass it and `register_method` an instance.

    Attributes:
        name: the `gating=` string that selects it.
        multi_path: True if blocks may have `groups > 1` sub-blocks and the
            controllers category heads (DMNN); False: `groups` must be 1.
        block_kinds: the `MultiPathBlock` kinds it gates ("bottleneck":
            ResNet, "inverted_residual": MobileNetV2).

    Example:
    ```python
    from dmnn_keras.methods import get_method
    get_method("aig").multi_path  # False
    ```
    """

    name: str = ""
    multi_path: bool = False
    block_kinds: tuple = ("bottleneck", "inverted_residual")

    def block(self, wiring, x, stage, name, **block_kwargs):
        """Applies gated block `name` (and its controller `name_gate`) to `x`.

        Appends the block's gates `[batch, n]` to `wiring.gates` (they feed the
        resource loss); `block_kwargs` are `MultiPathBlock` arguments (kind,
        filters, groups, path_width, strides, expand). Returns the block output.
        """
        raise NotImplementedError(f"{type(self).__name__} must define block()")

    def loss_layer(self, config, **loss_kwargs):
        """The resource-loss layer over the gates (`loss_kwargs`: FLOPs tables, weight, name, dtype)."""
        return ResourceLoss(config.flops_target, rate_loss=config.rate_loss,
                            uncertainty_spread=config.uncertainty_spread, **loss_kwargs)

    def export_converters(self):
        """`{layer class: converter}` for the layers it adds (see `dmnn_keras.export.register_converter`)."""
        return {}

    def input_independent(self, controller):
        """Whether `controller`'s inference gates are fixed (the model can then be pruned)."""
        return False

    def prune_block(self, block, gates, x):
        """The static replacement of gated `block` with fixed `gates` (numpy), applied to `x`."""
        raise ValueError(f"gating={self.name!r} has no pruning rule. Received: block {block.name!r}")


METHODS = {}  # gating name -> its registered GatingMethod (see `register_method`)
_converters_registered = False


def register_method(method):
    """Adds `method` (a `GatingMethod`) to `METHODS` under `method.name`; returns it."""
    if not isinstance(method, GatingMethod) or not isinstance(method.name, str) or not method.name:
        raise ValueError(
            f"register_method needs a GatingMethod with a non-empty name. Received: {method!r}"
        )
    METHODS[method.name] = method
    if _converters_registered:
        _register_converters(method)
    return method


def get_method(gating):
    """The `GatingMethod` named `gating`, or None for `gating=None` (static blocks)."""
    if gating is None:
        return None
    if not isinstance(gating, str) or gating not in METHODS:
        raise ValueError(
            f"gating must be one of {(None,) + tuple(METHODS)}. Received: gating={gating!r}"
        )
    return METHODS[gating]


def register_export_converters():
    """Registers every method's export converters (`dmnn_keras.export` calls it once on import;
    methods registered later register theirs in `register_method`)."""
    global _converters_registered
    _converters_registered = True
    for method in METHODS.values():
        _register_converters(method)


def _register_converters(method):
    from dmnn_keras.export.converters import register_converter

    for layer_class, converter in method.export_converters().items():
        register_converter(layer_class)(converter)
