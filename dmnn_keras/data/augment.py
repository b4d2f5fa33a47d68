"""Image augmentation and eval preprocessing for the tf.data pipelines.

All functions take and return ONE image, float32 [H, W, 3] with raw pixel
values in [0, 255], and are meant for `tf.data.Dataset.map` before batching.

Why per example and not per batch: each image gets its own crop and flip, as
in the paper. Why stateless: the random draws of an image come from its own
`seed` (int [2], `load_dataset` pairs each example with one from a seeded
`tf.data.Dataset.random`), not from a state shared by the whole pipeline. A
shared state (Keras' random layers keep a `SeedGenerator` variable) is
advanced by whatever an abandoned iterator prefetched, e.g. the 10 batches
`from_static` reads for calibration, so the same seed gave a different run;
with per-example seeds the map can also run in parallel.
"""

import tensorflow as tf

# ImageNet eval: resize the shorter side to 256 for a 224 crop (ratio 0.875).
IMAGENET_RESIZE_RATIO = 256 / 224


def split_seed(seed):
    """Two independent stateless seeds `int [2]` from one."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    return seeds[0], seeds[1]


class CifarTrainAugment:
    """CIFAR training augmentation: zero-pad, random crop, horizontal flip.

    The paper's recipe for 32x32 images: pad 4 pixels on each side, take a
    random 32x32 crop, flip left-right with probability 0.5.

    Args:
        image_size: int, output height and width (input must be this size).
        padding: int, zero padding on each side before cropping.

    Call:
        image: float32 [image_size, image_size, 3], seed: int [2] (stateless)
        -> same shape and dtype; the same seed gives the same crop and flip.
    """

    def __init__(self, image_size=32, padding=4):
        self.image_size = image_size
        self.padding = padding

    def __call__(self, image, seed):
        crop_seed, flip_seed = split_seed(seed)
        pad = self.padding
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        image = tf.image.stateless_random_crop(
            image, [self.image_size, self.image_size, 3], seed=crop_seed
        )
        return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def random_resized_crop(
    image,
    image_size,
    seed,
    scale=(0.08, 1.0),
    aspect_ratio=(3 / 4, 4 / 3),
):
    """Inception-style random-resized crop of one image.

    Samples a box covering `scale` of the image area with aspect ratio in
    `aspect_ratio` (up to 10 attempts, else the whole image) with
    `tf.image.stateless_sample_distorted_bounding_box`, crops it and resizes
    it bilinearly to `image_size`.

    Args:
        image: float32 [H, W, 3].
        image_size: int, output height and width.
        seed: int tensor [2], stateless seed.
        scale: (min, max) fraction of the image area.
        aspect_ratio: (min, max) width / height of the box.

    Returns:
        float32 [image_size, image_size, 3].
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratio,
        area_range=scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, size)
    crop = tf.image.resize(crop, [image_size, image_size], method="bilinear")
    return tf.clip_by_value(crop, 0.0, 255.0)


class ImageNetTrainAugment:
    """ImageNet training augmentation: random-resized crop + horizontal flip.

    Args:
        image_size: int, output height and width (224 for ImageNet).
        scale: (min, max) fraction of the image area kept by the crop.
        aspect_ratio: (min, max) aspect ratio of the crop.

    Call:
        image: float32 [H, W, 3], any H, W, seed: int [2] (stateless)
        -> [image_size, image_size, 3].
    """

    def __init__(self, image_size=224, scale=(0.08, 1.0), aspect_ratio=(3 / 4, 4 / 3)):
        self.image_size = image_size
        self.scale = scale
        self.aspect_ratio = aspect_ratio

    def __call__(self, image, seed):
        crop_seed, flip_seed = split_seed(seed)
        image = random_resized_crop(
            image, self.image_size, crop_seed, self.scale, self.aspect_ratio
        )
        return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def resize_shorter_side(image, shorter_side):
    """Bilinear resize keeping the aspect ratio.

    Args:
        image: float32 [H, W, 3].
        shorter_side: int, target length of the shorter side.

    Returns:
        float32 [H', W', 3] with min(H', W') == shorter_side.
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    ratio = tf.cast(shorter_side, tf.float32) / tf.reduce_min(shape)
    new_shape = tf.maximum(
        tf.cast(tf.round(shape * ratio), tf.int32), shorter_side
    )
    image = tf.image.resize(image, new_shape, method="bilinear")
    return tf.clip_by_value(image, 0.0, 255.0)


def center_crop(image, image_size):
    """Central image_size x image_size crop of an image at least that big.

    Args:
        image: float32 [H, W, 3] with H, W >= image_size.
        image_size: int.

    Returns:
        float32 [image_size, image_size, 3].
    """
    shape = tf.shape(image)
    top = (shape[0] - image_size) // 2
    left = (shape[1] - image_size) // 2
    image = tf.image.crop_to_bounding_box(
        image, top, left, image_size, image_size
    )
    return tf.ensure_shape(image, [image_size, image_size, 3])


def imagenet_eval_preprocess(image, image_size=224, resize_size=None):
    """ImageNet eval: resize the shorter side to 256, center-crop 224.

    Args:
        image: float32 [H, W, 3], any H, W.
        image_size: int, crop size.
        resize_size: int or None, shorter side before cropping; default
            `round(image_size * 256 / 224)`.

    Returns:
        float32 [image_size, image_size, 3].
    """
    if resize_size is None:
        resize_size = int(round(image_size * IMAGENET_RESIZE_RATIO))
    image = resize_shorter_side(image, resize_size)
    return center_crop(image, image_size)
