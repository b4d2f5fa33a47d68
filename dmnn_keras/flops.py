"""FLOPs, in multiply-accumulates (MACs), the papers' unit: of layers and of networks.

Counted: every convolution (shortcut projections included), depthwise
convolution and dense layer. Not counted: BatchNorm (folded into the
convolution at inference), activations, additions and pooling, which
are elementwise and cost no multiply-accumulates.

A network's MACs are a table (`flops_table`, `model_flops_table`): the MACs
that run for every image and, per gated block, the MACs behind each gate.
`full_flops` and `executed_flops` are the one formula each for the MACs with
every gate on and the MACs the gates of each image execute; the resource
losses, `profile`, both exporters and the benchmarks use them.
"""

import weakref

import keras
from keras import ops


def conv_flops(output_hw, kernel_size, in_channels, out_channels, groups=1):
    """MACs of a convolution producing an `output_hw` map."""
    out_h, out_w = output_hw
    k_h, k_w = kernel_size
    return out_h * out_w * k_h * k_w * (in_channels // groups) * out_channels


def layer_flops(layer, input_shape):
    """MACs of one plain Keras layer applied to `input_shape` (batch first).

    Composite dmnn_keras layers are counted by their own `compute_flops`.
    """
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out = layer.compute_output_shape(input_shape)
        channels = int(input_shape[-1])
        return conv_flops(
            out[1:3], layer.kernel_size, channels, channels * layer.depth_multiplier, channels
        )
    if isinstance(layer, keras.layers.Conv2D):
        out = layer.compute_output_shape(input_shape)
        return conv_flops(out[1:3], layer.kernel_size, int(input_shape[-1]), layer.filters, layer.groups)
    if isinstance(layer, keras.layers.Dense):
        positions = 1
        for dim in input_shape[1:-1]:
            positions *= int(dim)
        return positions * int(input_shape[-1]) * layer.units
    return 0


def sequential_flops(layers, input_shape):
    """MACs of `layers` applied one after another, and the output shape."""
    total = 0
    shape = tuple(input_shape)
    for layer in layers:
        total += layer_flops(layer, shape)
        shape = tuple(layer.compute_output_shape(shape))
    return total, shape


# === Networks ===
# A FLOPs table: {"always_on": MACs run for every image, "blocks": [{"name", "paths": [MACs per
# gate], optionally "pairs": [[i, j, MACs], ...]}, ...] over the gated blocks in network order}.

_TABLES = weakref.WeakKeyDictionary()  # model -> its table (a model's graph never changes)


def _layers_flops_table(layers):
    always_on, blocks = 0, []
    for layer in layers:
        if hasattr(layer, "compute_flops"):
            flops = layer.compute_flops()
            if isinstance(flops, dict):
                always_on += flops["always_on"]
                pairs = flops.get("pairs")
                if getattr(layer, "gated", False):
                    block = {"name": layer.name, "paths": flops["paths"]}
                    if pairs is not None:
                        block["pairs"] = pairs
                    blocks.append(block)
                else:
                    always_on += sum(flops["paths"]) + sum(f for _, _, f in pairs or ())
            else:
                always_on += flops
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            always_on += layer_flops(layer, tuple(layer.input.shape))
    return {"always_on": always_on, "blocks": blocks}


def flops_table(inputs, outputs):
    """Static MACs of the graph from `inputs` to `outputs` (for a model, use `model_flops_table`).

    Returns:
        dict with `always_on` (MACs that run for every image) and `blocks`, a
        list over gated blocks of `{"name", "paths": [MACs per gate]}`, plus
        `"pairs": [[i, j, MACs], ...]` for blocks whose FLOPs have terms that
        run only when two gates are both on (channel gating; see
        `executed_flops`).
    """
    return _layers_flops_table(keras.Model(inputs, outputs).layers)


def model_flops_table(model):
    """The `flops_table` of a functional `model`, computed once per model.

    The table depends only on the architecture, which a built model cannot
    change, so it is kept for the model's lifetime. The same dict is returned
    on every call: read it, do not modify it.
    """
    table = _TABLES.get(model)
    if table is None:
        build = getattr(model, "build_flops_table", None)  # a model that knows its own (exits)
        table = _TABLES[model] = build() if build else _layers_flops_table(model.layers)
    return table


def block_full_flops(block):
    """MACs of a `flops_table` block with every gate on."""
    return sum(block["paths"]) + sum(f for _, _, f in block.get("pairs", ()))


def full_flops(table):
    """MACs per image of a `flops_table` with every gate on."""
    return table["always_on"] + sum(block_full_flops(b) for b in table["blocks"])


def gateable_fraction(table, flops):
    """`(flops - always_on) / gateable`: the share of the gateable MACs that `flops` MACs run.

    `gateable = full - always_on` (at least 1); `flops` may be a number or a tensor.
    """
    return (flops - table["always_on"]) / max(full_flops(table) - table["always_on"], 1.0)


def rate_for_flops(table, flops):
    """The execution rate r whose expected MACs are `flops`, every gate on with probability r.

    Independent gates run `always_on + r * sum(paths) + r**2 * sum(pairs)`
    MACs on average (a pair's convolution needs both of its gates); without
    pairs that is `gateable_fraction`. `flops` may be a number or a tensor;
    the rate is not clipped.
    """
    linear = sum(sum(block["paths"]) for block in table["blocks"])
    quadratic = sum(f for block in table["blocks"] for _, _, f in block.get("pairs", ()))
    if not quadratic:
        return gateable_fraction(table, flops)
    rest = flops - table["always_on"]
    return (ops.sqrt(ops.maximum(linear ** 2 + 4.0 * quadratic * rest, 0.0)) - linear) / (
        2.0 * quadratic)


def executed_flops(table, gates, batch_size=None, dtype="float32"):
    """Executed MACs per image `[batch]` of a `flops_table` for its blocks' gates.

    `always_on + sum_l (gates_l . paths_l + sum_(i, j, f) in pairs_l f * gates_li * gates_lj)`:
    linear for sub-block gates (DMNN, AIG), bilinear for channel gates (a
    convolution from gated group i to gated group j runs only when both are on).

    Args:
        table: a `flops_table` result.
        gates: dict block name -> gates `[batch, G]` (every gated block), or a
            list of them in the order of `table["blocks"]`; tensors or arrays.
        batch_size: the (possibly symbolic) batch size, needed only when the
            table has no gated block (every image then runs the full MACs).
        dtype: the result's float dtype ("float64" for exact counts of big models).

    Returns:
        tensor `[batch]` of `dtype`.
    """
    blocks = table["blocks"]
    if isinstance(gates, dict):
        missing = [b["name"] for b in blocks if b["name"] not in gates]
        if missing:
            raise ValueError(f"gates must hold every gated block of the table. Missing: {missing}; "
                             f"received: {sorted(gates)}")
        gates = [gates[b["name"]] for b in blocks]
    if len(gates) != len(blocks):
        raise ValueError(f"gates must have one entry per gated block ({len(blocks)}). "
                         f"Received: {len(gates)} entries")
    if not blocks:
        if batch_size is None:
            raise ValueError("batch_size is needed for a table without gated blocks. "
                             "Received: batch_size=None")
        return ops.full((batch_size,), float(table["always_on"]), dtype)
    total = float(table["always_on"])
    for block, block_gates in zip(blocks, gates):
        block_gates = ops.cast(block_gates, dtype)
        total = total + ops.sum(block_gates * ops.convert_to_tensor(block["paths"], dtype), axis=-1)
        pairs = block.get("pairs")
        if pairs:
            first = ops.take(block_gates, [p[0] for p in pairs], axis=1)
            second = ops.take(block_gates, [p[1] for p in pairs], axis=1)
            weights = ops.convert_to_tensor([p[2] for p in pairs], dtype)
            total = total + ops.sum(first * second * weights, axis=-1)
    return total


def executed_flops_per_image(table, gates_by_block, count=None):
    """`executed_flops` as numpy float64 `[N]` for numpy gates (dict block name -> `[N, G]`).

    `count` is N, needed only when the table has no gated block.
    """
    return ops.convert_to_numpy(executed_flops(table, gates_by_block, count, dtype="float64"))


def executed_block_flops(block, gates):
    """Numpy float64 MACs `[N]` executed by one `flops_table` block for gates `[N, G]`."""
    return executed_flops_per_image({"always_on": 0, "blocks": [block]}, [gates])
