"""`check_images`, `check_batches`: the checks applied to the images a user hands to the library.

The models themselves stay graph-clean (no checks in `call`): an all-NaN batch
gives finite, confident logits with every gate off, and a 1-channel batch is
broadcast to RGB without a word. So the functions that take user arrays
(`predict_gates`, `profile`, `recalibrate_batch_norm`, `from_static`'s
calibration images, `compare_latency`, ...) check them here first.

Grayscale (1 channel) and RGBA (4 channels) arrays are rejected, not
converted: the fix is one line (`np.repeat(images, 3, axis=-1)`,
`images[..., :3]` or a composite over a background) and only the user knows
which one is right.
"""

import numpy as np

CHANNELS = 3
CHANNEL_HINTS = {
    1: "grayscale? repeat it to RGB: np.repeat(images, 3, axis=-1)",
    4: "RGBA? drop the alpha channel (images[..., :3]) or composite it over a background",
}


def check_images(images, argument="images"):
    """Raises ValueError unless `images` is a finite real `[batch, H, W, 3]` array.

    Args:
        images: an array-like batch of RGB images (raw pixels in [0, 255]).
        argument: the caller's argument name, for the message.

    Returns:
        `images` as a numpy array (not copied when it already is one).

    Example:
    ```python
    import numpy as np
    from dmnn_keras.image_checks import check_images
    check_images(np.zeros((2, 32, 32, 3))).shape  # (2, 32, 32, 3)
    check_images(np.zeros((2, 32, 32, 4)))  # ValueError: ... 4 channels (RGBA? ...)
    ```
    """
    images = np.asarray(images)
    if images.dtype == bool or not (
        np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
    ):
        raise ValueError(
            f"{argument} must be a real-valued (integer or float) array of RGB pixels in "
            f"[0, 255]. Received: dtype={images.dtype}"
        )
    if images.ndim != 4 or images.shape[-1] != CHANNELS:
        hint = ""
        if images.ndim == 4 and images.shape[1] == CHANNELS:
            hint = " (channels-first? transpose to [batch, H, W, 3])"
        elif images.ndim == 4:
            hint = f" ({CHANNEL_HINTS[images.shape[-1]]})" if images.shape[-1] in CHANNEL_HINTS else ""
        raise ValueError(
            f"{argument} must be RGB images [batch, height, width, 3]. Received: shape "
            f"{images.shape}" + (f", {images.shape[-1]} channel(s){hint}" if images.ndim == 4 else "")
        )
    if images.dtype.kind == "f":
        finite = np.isfinite(images)
        if not finite.all():
            bad = np.argwhere(~finite)
            first = tuple(int(i) for i in bad[0])
            raise ValueError(
                f"{argument} must hold finite pixel values in [0, 255]. Received: {len(bad)} "
                f"NaN or inf values, the first {images[first]} at index {first}"
            )
    return images


def check_batches(batches, argument="batches"):
    """Raises ValueError unless `batches` (how many batches of images to use) is an int >= 1."""
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"{argument} must be an int >= 1. Received: {argument}={batches!r}")
