"""tf.data input pipelines for CIFAR-10/100, ImageNet-1k and image folders.

`load_dataset` yields batches of RAW pixels: images float32
[batch, H, W, 3] in [0, 255] (the models normalise inside), labels int32
[batch], or `{"label": int32 [batch], "category": int32 [batch]}` with
`with_categories=True`.

Pipeline order: read (TFDS files shuffled only for training) -> take
`max_examples` -> decode/select -> cache (CIFAR by default) -> shuffle
(training only) -> augment or eval-preprocess (per example) -> batch ->
prefetch. Image folders shuffle their file list instead of decoded examples.
"""

import dataclasses
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from dmnn_keras.data import augment
from dmnn_keras.data import categories

FOLDER_PREFIX = "folder:"
FOLDER_SPLITS = ("train", "val")
FOLDER_IMAGE_SIZE = 224
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Classes directly under the root: every 5th file of a class (sorted by name) is "val".
FOLDER_VALIDATION_EVERY = 5


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    Attributes:
        name: key in `DATASETS` (or "folder:<root>").
        tfds_name: TFDS builder name, None for image folders.
        num_classes: number of fine labels.
        num_categories: number of coarse category labels (0 if none).
        image_size: train/eval crop size (height = width).
        train_split: name of the training split.
        eval_split: name of the evaluation split.
        category_names: tuple of `num_categories` str, by category id.
    """

    name: str
    tfds_name: str
    num_classes: int
    num_categories: int
    image_size: int
    train_split: str
    eval_split: str
    category_names: tuple


DATASETS = {
    "cifar10": DatasetInfo(
        name="cifar10",
        tfds_name="cifar10",
        num_classes=10,
        num_categories=len(categories.CIFAR10_CATEGORY_NAMES),
        image_size=32,
        train_split="train",
        eval_split="test",
        category_names=tuple(categories.CIFAR10_CATEGORY_NAMES),
    ),
    "cifar100": DatasetInfo(
        name="cifar100",
        tfds_name="cifar100",
        num_classes=100,
        num_categories=len(categories.CIFAR100_CATEGORY_NAMES),
        image_size=32,
        train_split="train",
        eval_split="test",
        category_names=tuple(categories.CIFAR100_CATEGORY_NAMES),
    ),
    "imagenet2012": DatasetInfo(
        name="imagenet2012",
        tfds_name="imagenet2012",
        num_classes=1000,
        num_categories=len(categories.imagenet_category_names()),
        image_size=224,
        train_split="train",
        eval_split="validation",
        category_names=tuple(categories.imagenet_category_names()),
    ),
}

_CIFAR_NAMES = ("cifar10", "cifar100")


def _check_positive_int(value, argument, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{argument}` must be a positive int"
            + (" or None" if allow_none else "")
            + f". Received: {argument}={value!r}"
        )


def _folder_error(name, found, allowed):
    raise ValueError(f"dataset name must be {allowed}. Received: name={name!r} ({found})")


def _folder_root(name):
    root = name[len(FOLDER_PREFIX) :]
    if not root or not os.path.isdir(root):
        _folder_error(name, "no such directory", f"'{FOLDER_PREFIX}<root>' with an existing <root>")
    return root


def _split_layout(root):
    """True for `<root>/{train,val}/<class>/*`, False for `<root>/<class>/*`."""
    return any(os.path.isdir(os.path.join(root, split)) for split in FOLDER_SPLITS)


def _subfolders(directory):
    return sorted(
        d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))
    )


def _folder_class_names(name, root):
    """Sorted class subfolder names: of `<root>/train` (else `<root>/val`), or of `<root>`."""
    directory = root
    if _split_layout(root):
        directory = next(
            os.path.join(root, s) for s in FOLDER_SPLITS if os.path.isdir(os.path.join(root, s))
        )
    class_names = _subfolders(directory)
    if len(class_names) < 2:
        _folder_error(
            name, f"{len(class_names)} class subfolder(s) {class_names} in {directory}",
            "an image folder with at least 2 class subfolders (one per class)",
        )
    return class_names


def _image_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(
        os.path.join(directory, f) for f in os.listdir(directory)
        if f.lower().endswith(IMAGE_EXTENSIONS)
    )


def get_dataset_info(name):
    """Returns the `DatasetInfo` of a dataset name.

    Args:
        name: a key of `DATASETS` or "folder:<root>" (classes = sorted
            subfolders of `<root>/train`, or of `<root>`; see `load_dataset`).

    Returns:
        `DatasetInfo`.
    """
    if not isinstance(name, str):
        raise ValueError(
            f"Received: name={name!r}. Expected one of {sorted(DATASETS)} "
            f"or '{FOLDER_PREFIX}<root>'."
        )
    if name.startswith(FOLDER_PREFIX):
        root = _folder_root(name)
        return DatasetInfo(
            name=name,
            tfds_name=None,
            num_classes=len(_folder_class_names(name, root)),
            num_categories=0,
            image_size=FOLDER_IMAGE_SIZE,
            train_split="train",
            eval_split="val",
            category_names=(),
        )
    if name not in DATASETS:
        raise ValueError(
            f"Received: name={name!r}. Expected one of {sorted(DATASETS)} "
            f"or '{FOLDER_PREFIX}<root>'."
        )
    return DATASETS[name]


def _check_split(split, info):
    allowed = (info.train_split, info.eval_split)
    # TFDS slicing such as "train[:10%]" is allowed for TFDS datasets.
    base = split.split("[")[0] if isinstance(split, str) else None
    if base not in allowed or (info.tfds_name is None and split != base):
        raise ValueError(
            f"Received: split={split!r} for dataset {info.name!r}. Expected "
            f"one of {list(allowed)}"
            + (" (TFDS slices like 'train[:1000]' are allowed)."
               if info.tfds_name else ".")
        )


def _tfds_examples(info, split, training, seed, data_dir):
    """Reads a TFDS split as (image uint8 [H, W, 3], label, category)."""
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    dataset = tfds.load(
        info.tfds_name,
        split=split,
        shuffle_files=training,
        data_dir=data_dir,
        read_config=read_config,
    )

    def select(example):
        label = tf.cast(example["label"], tf.int32)
        if info.name == "cifar10":
            category = categories.cifar10_category(label)
        elif info.name == "cifar100":
            category = tf.cast(example["coarse_label"], tf.int32)
        else:
            category = categories.imagenet_category(label)
        return example["image"], label, category

    return dataset, select


def _folder_files(name, split):
    """The image files of each class (sorted classes) in one split of an image folder.

    `<root>/<split>/<class>/*`, or, with the classes directly under `<root>`,
    a fixed split of each class's files sorted by name: every
    `FOLDER_VALIDATION_EVERY`-th file (the 5th, 10th, ...) is "val", the
    others "train".
    """
    root = _folder_root(name)
    class_names = _folder_class_names(name, root)
    if _split_layout(root):
        return [_image_files(os.path.join(root, split, c)) for c in class_names]
    every = FOLDER_VALIDATION_EVERY
    keep = (lambda i: i % every == every - 1) if split == "val" else (lambda i: i % every != every - 1)
    return [
        [f for i, f in enumerate(_image_files(os.path.join(root, c))) if keep(i)]
        for c in class_names
    ]


def _folder_examples(name, split):
    """Lists an image folder's split (`_folder_files`) as (image uint8, label, category=-1).

    Files are ordered class-interleaved (first file of every class, then the
    second, ...), so that `max_examples` keeps a class-balanced subset.
    """
    files_per_class = _folder_files(name, split)
    paths, labels = [], []
    for index in range(max((len(f) for f in files_per_class), default=0)):
        for label, files in enumerate(files_per_class):
            if index < len(files):
                paths.append(files[index])
                labels.append(label)
    if not paths:
        _folder_error(
            name, f"no {split!r} images",
            f"an image folder with {', '.join(IMAGE_EXTENSIONS)} files in its class subfolders "
            f"(with the classes directly under <root>, every {FOLDER_VALIDATION_EVERY}th image "
            "of a class is for validation)",
        )
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths), tf.constant(labels, tf.int32))
    )

    def select(path, label):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False
        )
        return image, label, tf.constant(-1, tf.int32)

    return dataset, select


def _make_preprocess(info, image_size, training):
    """Returns a per-example fn (uint8 [H, W, 3], seed int [2]) -> float32 [S, S, 3].

    The seed drives the training augmentation (eval preprocessing ignores it).
    """
    if info.name in _CIFAR_NAMES:
        padding = max(1, round(4 * image_size / 32))
        train_augment = (
            augment.CifarTrainAugment(image_size, padding)
            if training
            else None
        )

        def preprocess(image, seed):
            image = tf.cast(image, tf.float32)
            if image_size != info.image_size:
                image = tf.image.resize(image, [image_size, image_size])
                image = tf.clip_by_value(image, 0.0, 255.0)
            if train_augment is not None:
                image = train_augment(image, seed)
            return tf.ensure_shape(image, [image_size, image_size, 3])

        return preprocess

    train_augment = (
        augment.ImageNetTrainAugment(image_size)
        if training
        else None
    )

    def preprocess(image, seed):
        image = tf.cast(image, tf.float32)
        if train_augment is not None:
            image = train_augment(image, seed)
        else:
            image = augment.imagenet_eval_preprocess(image, image_size)
        return tf.ensure_shape(image, [image_size, image_size, 3])

    return preprocess


def load_dataset(
    name,
    split,
    *,
    batch_size,
    training,
    image_size=None,
    max_examples=None,
    with_categories=False,
    shuffle_buffer=10000,
    seed=None,
    data_dir=None,
    drop_remainder=None,
    cache=None,
):
    """Builds a batched input pipeline.

    Args:
        name: "cifar10", "cifar100", "imagenet2012" or "folder:<root>", an
            image folder (.jpg, .jpeg, .png, .bmp, .gif; at least 2 classes;
            labels = the class subfolders in sorted order) laid out as
            `<root>/{train,val}/<class>/*`, or as `<root>/<class>/*` (as for
            `keras.utils.image_dataset_from_directory`) split the same way
            every time: of each class's files sorted by name, every 5th (the
            5th, 10th, ...) is "val" and the others "train".
        split: "train" or the eval split ("test" for CIFAR, "validation" for
            ImageNet, "val" for folders); TFDS slices like "train[:1000]" ok.
        batch_size: int.
        training: bool; shuffles files and examples and augments (CIFAR: pad
            4, random crop, flip; else random-resized crop + flip). Eval
            preprocessing: none for CIFAR, resize shorter side to 256/224 *
            image_size + center crop otherwise. Eval order is deterministic.
        image_size: int crop size; default `info.image_size` (32 for CIFAR,
            224 for ImageNet and folders).
        max_examples: int or None, keep only the first examples of the split
            (before shuffling and augmenting).
        with_categories: bool, also yield the coarse category label.
        shuffle_buffer: int, example shuffle buffer (training only).
        seed: int or None; seeds file order, shuffling and augmentation
            (each example draws its crop and flip from its own seed, so
            an iterator abandoned early, e.g. by a calibration, does not
            change what later ones see). The same seed gives the same
            sequence of epochs.
        data_dir: TFDS data dir (default: TFDS_DATA_DIR or ~/tensorflow_datasets).
        drop_remainder: bool; default `training`.
        cache: bool; cache decoded examples in memory. Default: True for
            CIFAR, False otherwise.

    Returns:
        `tf.data.Dataset` of `(images, labels)`: float32
        [batch, image_size, image_size, 3] in [0, 255] and int32 [batch]; or
        `(images, {"label": int32 [batch], "category": int32 [batch]})`.

    Example:
    ```python
    from dmnn_keras.data import load_dataset
    test = load_dataset("cifar10", "test", batch_size=8, training=False, max_examples=16)
    images, labels = next(iter(test))
    images.shape, labels.shape  # ((8, 32, 32, 3), (8,))
    ```
    """
    info = get_dataset_info(name)
    _check_split(split, info)
    _check_positive_int(batch_size, "batch_size", allow_none=False)
    _check_positive_int(image_size, "image_size")
    _check_positive_int(max_examples, "max_examples")
    _check_positive_int(shuffle_buffer, "shuffle_buffer", allow_none=False)
    if with_categories and info.num_categories == 0:
        raise ValueError(
            f"Dataset {name!r} has no category labels. Received: "
            f"with_categories=True. Expected one of {sorted(DATASETS)}."
        )
    image_size = image_size or info.image_size
    if cache is None:
        cache = info.name in _CIFAR_NAMES
    training = bool(training)
    if drop_remainder is None:
        drop_remainder = training
    autotune = tf.data.AUTOTUNE
    # Eval and seeded training keep a fixed order.
    deterministic = (not training) or seed is not None

    is_folder = info.tfds_name is None
    if is_folder:
        dataset, select = _folder_examples(name, split)
    else:
        dataset, select = _tfds_examples(info, split, training, seed, data_dir)
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    if is_folder and training:
        # Folders shuffle the (cheap) file paths fully, before decoding.
        dataset = dataset.shuffle(
            len(dataset), seed=seed, reshuffle_each_iteration=True
        )
    dataset = dataset.map(
        select, num_parallel_calls=autotune, deterministic=deterministic
    )
    if cache:
        dataset = dataset.cache()
    if training and not is_folder:
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )

    # One stateless augmentation seed per example (a new stream every epoch).
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds))
    preprocess = _make_preprocess(info, image_size, training)

    def to_model_inputs(example, seed):
        image, label, category = example
        image = preprocess(image, seed)
        if with_categories:
            return image, {"label": label, "category": category}
        return image, label

    dataset = dataset.map(
        to_model_inputs,
        num_parallel_calls=autotune,
        deterministic=deterministic,
    )
    dataset = dataset.batch(
        batch_size,
        drop_remainder=drop_remainder,
        num_parallel_calls=autotune,
        deterministic=deterministic,
    )
    return dataset.prefetch(autotune)
