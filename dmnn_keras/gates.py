"""Reading the gates of a trained model, forcing them for benchmarks and training, fixing constant ones."""

import contextlib

import keras
import numpy as np

from dmnn_keras.gate_decisions import FIXED_GATE_LOGIT, ON_THRESHOLD, constant_gates
from dmnn_keras.image_checks import check_batches, check_images
from dmnn_keras.keras_compat import nested_layers


def image_batches(images, batch_size):
    """Yields numpy image batches from an array or a dataset of images / (images, ...).

    Every batch passes `check_images`: finite RGB `[batch, H, W, 3]`, else a ValueError.
    """
    if hasattr(images, "as_numpy_iterator"):
        for batch in images.as_numpy_iterator():
            yield check_images(batch[0] if isinstance(batch, tuple) else batch)
        return
    images = check_images(images)
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


def first_batches(images, batches, batch_size):
    """The first `batches` batches of `image_batches(images, batch_size)`, as float32 arrays.

    `batches` must be an int >= 1 and `images` hold at least one image, else a ValueError.
    """
    check_batches(batches)
    data = [np.asarray(batch, "float32")
            for batch, _ in zip(image_batches(images, batch_size), range(batches))]
    if not data:
        raise ValueError("images must hold at least one image. Received: an empty dataset")
    return data


# A single pass over more batches than this runs the probe compiled. Where the two modes break
# even for the CIFAR presets: BENCHMARKS.md, gate_reading (1 batch and 8 measured).
EAGER_PASS_BATCHES = 8


def batch_count(images, batch_size):
    """How many batches `image_batches(images, batch_size)` yields; -1 if a dataset does not know."""
    if hasattr(images, "cardinality"):
        count = int(images.cardinality())
        return count if count >= 0 else -1
    return -(-len(images) // batch_size) if hasattr(images, "__len__") else 0


def probe_outputs(probe, batches, compiled):
    """Every output of `probe` (a Keras model) over image `batches`, concatenated: a list of arrays.

    `compiled`: run `predict_on_batch`, one graph traced at the first call
    (again at most for a smaller last batch) and reused by every later call,
    variables read at each call (a gate shift between calls is seen): a long
    pass, or many passes over the same images, skips eager execution's per-op
    cost (worst for a model built under `MirroredStrategy`). A pass over a few
    batches is faster eagerly: the trace costs seconds (MobileNetV2 has 17
    blocks). An empty `batches` is a ValueError.
    """
    collected = []
    for batch in batches:
        results = probe.predict_on_batch(batch) if compiled else probe(batch, training=False)
        results = results if isinstance(results, (list, tuple)) else [results]
        collected.append([keras.ops.convert_to_numpy(value) for value in results])
    if not collected:
        raise ValueError("images must hold at least one image. Received: none")
    return [np.concatenate(values, axis=0) for values in zip(*collected)]


def predict_gates(model, images, batch_size=64, return_logits=False):
    """Inference gates of every gated block of `model` for `images`.

    Args:
        model: a `DynamicModel`.
        images: `[N, H, W, 3]` array of RGB pixels in [0, 255] (any real
            dtype), or a `tf.data.Dataset` of image batches or of `(images,
            labels)` batches. NaN/inf values, grayscale (1 channel) and RGBA
            (4 channels) are rejected with a ValueError, not converted (see
            `dmnn_keras.image_checks`), and so is an empty array or dataset.
        batch_size: batch size for arrays (datasets keep their own). A pass
            over more than `EAGER_PASS_BATCHES` (8) batches runs one compiled
            graph (`probe_outputs`); fewer run eagerly.
        return_logits: also return the model's logits `[N, num_classes]`.

    Returns:
        dict block name -> gates `[N, groups]` (0/1 floats), in network order;
        with `return_logits`, `(gates, logits)`.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet()
    images = np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    gates = dk.predict_gates(model, images)
    list(gates)  # ['conv2_block1', 'conv3_block1', 'conv4_block1', 'conv5_block1']
    gates["conv2_block1"].shape  # (4, 4)
    gates, logits = dk.predict_gates(model, images, return_logits=True)
    logits.shape  # (4, 10)
    ```
    """
    probe, names = gate_probe(model)
    arrays = probe_outputs(probe, image_batches(images, batch_size),
                           compiled=batch_count(images, batch_size) > EAGER_PASS_BATCHES)
    gates = dict(zip(names, arrays[1:]))
    return (gates, arrays[0]) if return_logits else gates


def sublayers(model, kind):
    """Every layer of class `kind` inside `model`, nested layers and models included."""
    return [layer for layer in nested_layers(model) if isinstance(layer, kind)]


def gumbel_gates(model):
    """Every `GumbelGate` inside `model` (the controllers' gate layers)."""
    from dmnn_keras.layers.gumbel_gate import GumbelGate

    return sublayers(model, GumbelGate)


def bound_gate_logits(model, bound):
    """Sets `logit_bound` on every `GumbelGate` of `model`, in place.

    In training each gate then adds `mean(relu(|logits| - bound)^2)` to the
    model's losses (see `GumbelGate`); inference is unchanged. Call it before
    `compile`/`fit` (the training function reads it when traced); a saved
    model does not keep it (set it again before training a loaded one).

    Args:
        model: a gated model.
        bound: None (no bound), or a number > 0.

    Returns:
        The number of gates set.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.DMNNResNet()  # one gate per gated block
    dk.bound_gate_logits(model, 4.0)  # 4
    ```
    """
    from dmnn_keras.layers.gumbel_gate import check_logit_bound

    check_logit_bound(bound)
    return _set_on_gumbel_gates(model, "bound_gate_logits", "logit_bound",
                                None if bound is None else float(bound))


def reward_gate_information(model, weight):
    """Sets `information_weight` on every `GumbelGate` of `model`, in place.

    In training each gate then adds `-weight * I`, `I` the mutual information
    between the batch's images and its decisions (`decision_information`):
    a reward for gates that switch on for some images and off for others,
    against gates constant over the data. Inference is unchanged. Call it
    before `compile`/`fit` (the training function reads it when traced); a saved
    model does not keep it (set it again before training a loaded one).

    Args:
        model: a gated model.
        weight: a number >= 0 (0: none).

    Returns:
        The number of gates set.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.DMNNResNet()
    dk.reward_gate_information(model, 0.5)  # 4
    ```
    """
    from dmnn_keras.layers.gumbel_gate import check_information_weight

    check_information_weight(weight)
    return _set_on_gumbel_gates(model, "reward_gate_information", "information_weight",
                                float(weight))


def _set_on_gumbel_gates(model, caller, attribute, value):
    """Sets `attribute` to `value` on every `GumbelGate` of `model`; returns how many."""
    gates = gumbel_gates(model)
    if not gates:
        raise ValueError(f"{caller} needs a gated model. "
                         f"Received: {model.name!r} without Gumbel gates")
    for gate in gates:
        setattr(gate, attribute, value)
    return len(gates)


def gate_probe(model):
    """A functional model `images -> [logits, gates_1, ..., gates_L]` sharing `model`'s layers.

    It stops at the resource loss layer's input: inference must not run (and
    update the metrics of) the training-only loss layer.

    Returns:
        `(probe, block_names)`, the names of the L gated blocks in order.
    """
    if hasattr(model, "build_gate_probe"):  # a model whose gates are not controllers' (exits)
        return model.build_gate_probe()
    pairs = list(getattr(model, "gated_blocks", []))
    logits = model.resource_loss.input[0] if pairs else model.outputs[0]
    gates = [controller.output[0] for controller, _ in pairs]
    return keras.Model(model.input, [logits] + gates), [block.name for _, block in pairs]


def force_gates(model, rate):
    """A copy of `model` whose controllers run a fixed set of sub-blocks.

    Every block executes its first k sub-blocks for every image, whatever the
    input: k = round(rate * groups + carry), where the carry is the rounding
    error of the blocks before it (at least one in blocks without a shortcut).
    With uniform groups such as 4 that is round(rate * groups) in every block;
    with per-stage groups, blocks of one sub-block alternate on and off, so
    the share of sub-blocks on stays `rate` (`dmnn_keras.gate_decisions`).
    ConvNet-AIG blocks (one gate each) are forced the same way; channel gates
    are forced per convolution, round(rate * size) of each. LC-Net forces its
    channel gates the same way and keeps every layer gate on at any rate > 0,
    so its share of gates on stays about `rate` (a carried layer gate on top
    would run about rate**2 of them). Halves round up.
    Weights are copied; the original model is unchanged.

    Args:
        model: a gated `DynamicModel` (its config has `forced_gate_rate`).
        rate: float in [0, 1], or None to restore input-dependent gates.

    Returns:
        A new model of the same class, same inputs and outputs.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    half = dk.force_gates(dk.DMNNResNet(), 0.5)
    images = np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    dk.predict_gates(half, images)["conv2_block1"]  # [[1, 1, 0, 0], [1, 1, 0, 0]]
    dk.profile(half, images)["flops_ratio"] < 1.0  # True
    ```
    """
    if rate is not None and not (isinstance(rate, (int, float)) and 0.0 <= rate <= 1.0):
        raise ValueError(f"rate must be None or a number in [0, 1]. Received: rate={rate!r}")
    config = model.get_config()
    if "forced_gate_rate" not in config or not model.gated_blocks:
        raise ValueError(
            f"force_gates needs a gated dmnn_keras model. Received: {type(model).__name__} "
            f"named {model.name!r} without gates"
        )
    config["forced_gate_rate"] = None if rate is None else float(rate)
    forced = type(model).from_config(config)
    forced.set_weights(model.get_weights())
    return forced


@contextlib.contextmanager
def all_gates_on(model):
    """Within the block, calls of `model` run its full network: every gate on, no resource loss.

    Every `GateController` turns all its sub-blocks on for every image (as
    `force_gates(model, 1.0)`, without a copy: same weights, same variables),
    and the `ResourceLoss` passes its input through: no loss, no multiplier
    step, no FLOPs tracker update. The switch is read when a call is run or
    traced, so it holds for eager calls and for calls traced inside the block
    (a `train_step`'s `tf.function`). The model is restored on leaving.

    Args:
        model: a DMNN `DynamicModel` (every controller a `GateController`).

    Returns:
        A context manager that yields `model`.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet(flops_target=0.5)
    images = np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    with dk.all_gates_on(model):
        full = model(images)  # the logits of the full network
    np.allclose(full, dk.force_gates(model, 1.0)(images))  # True
    ```
    """
    controllers, loss_layer = dmnn_gating(model, "all_gates_on")
    rates = [c.forced_rate for c in controllers]
    try:
        for controller in controllers:
            controller.forced_rate = 1.0
        loss_layer.suspended = True
        yield model
    finally:
        for controller, rate in zip(controllers, rates):
            controller.forced_rate = rate
        loss_layer.suspended = False


def fix_constant_gates(model, images, batch_size=64):
    """Makes every gate that no image of `images` switches a constant of `model`, in place.

    Some gates of a trained DMNN take one decision for every image (the
    training report counts them: `constant_gates`). Each such gate gets a zero
    logit kernel column and the logit bias `+-FIXED_GATE_LOGIT`
    (`dmnn_keras.gate_decisions`): it then takes that decision for every
    input, so the model's outputs on `images` are unchanged, and `to_tflite`
    turns it into a constant: no `IF` op for its sub-block, which runs
    unconditionally (always on) or is left out (always off). Gates that
    differ between images keep their controller. A gate that would have
    switched on an image outside `images` no longer does: calibrate on images
    like the ones inference will see (clean training images), then evaluate.

    Args:
        model: a DMNN `DynamicModel` (every controller a `GateController`).
        images: `[N, H, W, 3]` RGB pixels in [0, 255], or a `tf.data.Dataset`
            of image batches or `(images, labels)` batches (see `predict_gates`).
        batch_size: batch size for arrays.

    Returns:
        dict block name -> tuple of the block's gates: 1.0 (fixed on), 0.0
        (fixed off) or None (decided per image), in network order.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet(groups=2)
    images = np.random.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    fixed = dk.fix_constant_gates(model, images)  # untrained gates start on: all are fixed on
    fixed["conv2_block1"]  # (1.0, 1.0)
    ```
    """
    controllers, _ = dmnn_gating(model, "fix_constant_gates")
    forced = [c.name for c in controllers if c.forced_rate is not None]
    if forced:
        raise ValueError("fix_constant_gates needs learned gates. Received: a model with forced "
                         f"gates (force_gates) in {forced}")
    fixed = {}
    gates = predict_gates(model, images, batch_size)  # a ValueError for no images
    for (controller, block), decided in zip(model.gated_blocks, gates.values()):
        kernel, bias = controller.logit_weights()
        for j in np.flatnonzero((decided == decided[:1]).all(axis=0)):
            kernel[:, j] = 0.0
            bias[j] = FIXED_GATE_LOGIT if decided[0, j] > ON_THRESHOLD else -FIXED_GATE_LOGIT
        controller.set_logit_weights(kernel, bias)
        fixed[block.name] = constant_gates(kernel, bias, controller.min_active)
    return fixed


def dmnn_gating(model, needed_by):
    """`(controllers, resource_loss)` of a DMNN; ValueError naming `needed_by` for any other model."""
    from dmnn_keras.layers.gate_controller import GateController

    controllers = list(getattr(model, "controllers", []))
    loss_layer = getattr(model, "resource_loss", None)
    if not controllers or loss_layer is None or not all(
            isinstance(c, GateController) for c in controllers):
        raise ValueError(
            f"{needed_by} needs a DMNN: gate controllers, all GateController, and a "
            f"ResourceLoss. Received: {type(model).__name__} named {model.name!r} with "
            f"controllers {[type(c).__name__ for c in controllers]}")
    return controllers, loss_layer
