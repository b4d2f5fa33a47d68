"""Tests for dmnn_keras.data.load_dataset on CIFAR-10, mocks and folders."""

import os
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED_TFDS_DIR = REPO_ROOT.parent / "shared" / "tfds"
# TFDS reads TFDS_DATA_DIR at import time: set it before importing TFDS.
if "TFDS_DATA_DIR" not in os.environ and SHARED_TFDS_DIR.is_dir():
    os.environ["TFDS_DATA_DIR"] = str(SHARED_TFDS_DIR)
TFDS_DATA_DIR = os.environ.get("TFDS_DATA_DIR")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from dmnn_keras import data  # noqa: E402

HAS_CIFAR10 = TFDS_DATA_DIR is not None and os.path.isdir(
    os.path.join(TFDS_DATA_DIR, "cifar10")
)
requires_cifar10 = pytest.mark.skipif(
    not HAS_CIFAR10, reason="prepared TFDS cifar10 not found"
)
NUM_EXAMPLES = 256
BATCH_SIZE = 64


def _load_cifar10(**kwargs):
    kwargs.setdefault("batch_size", BATCH_SIZE)
    kwargs.setdefault("max_examples", NUM_EXAMPLES)
    return data.load_dataset("cifar10", data_dir=TFDS_DATA_DIR, **kwargs)


def _as_numpy(dataset):
    """Returns (images [N, H, W, 3], labels [N]) or labels as a dict."""
    batches = list(dataset.as_numpy_iterator())
    images = np.concatenate([b[0] for b in batches])
    if isinstance(batches[0][1], dict):
        labels = {
            k: np.concatenate([b[1][k] for b in batches])
            for k in batches[0][1]
        }
    else:
        labels = np.concatenate([b[1] for b in batches])
    return images, labels


def test_dataset_infos():
    assert sorted(data.DATASETS) == ["cifar10", "cifar100", "imagenet2012"]
    for name, info in data.DATASETS.items():
        assert info.name == name
        assert len(info.category_names) == info.num_categories
    assert data.DATASETS["cifar10"].num_categories == 2
    assert data.DATASETS["cifar100"].num_categories == 20
    assert data.DATASETS["imagenet2012"].image_size == 224
    assert data.DATASETS["imagenet2012"].eval_split == "validation"
    assert 50 <= data.DATASETS["imagenet2012"].num_categories <= 66


@requires_cifar10
def test_cifar10_eval_shapes_values_and_deterministic_order():
    dataset = _load_cifar10(split="test", training=False)
    assert dataset.element_spec[0].shape.as_list() == [None, 32, 32, 3]
    assert dataset.element_spec[0].dtype == tf.float32
    assert dataset.element_spec[1].dtype == tf.int32
    images, labels = _as_numpy(dataset)
    assert images.shape == (NUM_EXAMPLES, 32, 32, 3)
    assert images.min() >= 0.0 and images.max() <= 255.0
    assert images.max() > 1.0  # raw pixels, not normalised
    assert labels.min() >= 0 and labels.max() < 10
    assert len(np.unique(labels)) == 10
    images_again, labels_again = _as_numpy(dataset)
    np.testing.assert_array_equal(labels, labels_again)
    np.testing.assert_array_equal(images, images_again)


@requires_cifar10
def test_cifar10_training_is_shuffled_and_augmented():
    eval_images, eval_labels = _as_numpy(
        _load_cifar10(split="train", training=False)
    )
    train_dataset = _load_cifar10(split="train", training=True, seed=0)
    assert train_dataset.element_spec[0].shape.as_list() == [
        BATCH_SIZE, 32, 32, 3
    ]
    train_images, train_labels = _as_numpy(train_dataset)
    assert train_images.shape == eval_images.shape  # 256 = 4 full batches
    assert train_images.min() >= 0.0 and train_images.max() <= 255.0
    # Same examples (take before shuffle), in another order.
    assert sorted(train_labels) == sorted(eval_labels)
    assert not np.array_equal(train_labels, eval_labels)
    # Augmented: the sets of images differ (crops, flips, zero borders).
    eval_sums = np.sort(eval_images.sum(axis=(1, 2, 3)))
    train_sums = np.sort(train_images.sum(axis=(1, 2, 3)))
    assert not np.allclose(eval_sums, train_sums)
    # Seeded: the same seed gives the same batches.
    again_images, again_labels = _as_numpy(
        _load_cifar10(split="train", training=True, seed=0)
    )
    np.testing.assert_array_equal(train_labels, again_labels)
    np.testing.assert_array_equal(train_images, again_images)


@requires_cifar10
def test_an_abandoned_iterator_does_not_change_the_next_epoch():
    # `from_static` reads 10 training batches for calibration and drops the
    # iterator; what it prefetched must not shift the augmentation of the epochs
    # that follow (it did: the same seed gave a different run).
    def second_epoch(first_batches):
        dataset = _load_cifar10(split="train", training=True, seed=0, max_examples=128,
                                batch_size=16)
        for _ in zip(range(first_batches), dataset):
            pass
        return _as_numpy(dataset)

    after_one, labels_one = second_epoch(1)
    after_all, labels_all = second_epoch(8)
    np.testing.assert_array_equal(labels_one, labels_all)
    np.testing.assert_array_equal(after_one, after_all)


@requires_cifar10
def test_cifar10_with_categories():
    dataset = _load_cifar10(
        split="test", training=False, with_categories=True, batch_size=100
    )
    images_spec, labels_spec = dataset.element_spec
    assert set(labels_spec) == {"label", "category"}
    assert labels_spec["category"].dtype == tf.int32
    _, labels = _as_numpy(dataset)
    assert len(labels["label"]) == NUM_EXAMPLES  # last batch kept at eval
    expected = np.array(data.CIFAR10_CLASS_TO_CATEGORY)[labels["label"]]
    np.testing.assert_array_equal(labels["category"], expected)
    vehicles = np.isin(labels["label"], [0, 1, 8, 9])
    assert np.all(labels["category"][vehicles] == 0)
    assert np.all(labels["category"][~vehicles] == 1)


@requires_cifar10
def test_cifar10_image_size_and_drop_remainder():
    dataset = _load_cifar10(
        split="test[:100]",
        training=True,
        image_size=48,
        batch_size=32,
        max_examples=None,
        cache=False,
    )
    shapes = [images.shape for images, _ in dataset]
    assert shapes == [(32, 48, 48, 3)] * 3


def test_cifar100_mock_with_coarse_categories():
    with tfds.testing.mock_data(num_examples=12):
        dataset = data.load_dataset(
            "cifar100",
            "train",
            batch_size=4,
            training=True,
            with_categories=True,
            seed=1,
        )
        images, labels = _as_numpy(dataset)
    assert images.shape == (12, 32, 32, 3)
    assert images.dtype == np.float32
    assert labels["label"].min() >= 0 and labels["label"].max() < 100
    assert labels["category"].min() >= 0 and labels["category"].max() < 20


@pytest.mark.parametrize("training", [False, True])
def test_imagenet_mock_crops_and_categories(training):
    with tfds.testing.mock_data(num_examples=6):
        dataset = data.load_dataset(
            "imagenet2012",
            "validation",
            batch_size=3,
            training=training,
            with_categories=True,
            seed=0,
        )
        images, labels = _as_numpy(dataset)
    assert images.shape == (6, 224, 224, 3)
    assert images.min() >= 0.0 and images.max() <= 255.0
    expected = data.imagenet_class_to_category()[labels["label"]]
    np.testing.assert_array_equal(labels["category"], expected)


def _write_image_folder(root, class_names, images_per_class, rng):
    for split in ("train", "val"):
        for class_name in class_names:
            class_dir = root / split / class_name
            class_dir.mkdir(parents=True)
            for i in range(images_per_class):
                height, width = rng.integers(40, 90, size=2)
                image = rng.integers(0, 256, (height, width, 3), np.uint8)
                jpeg = tf.io.encode_jpeg(image).numpy()
                (class_dir / f"img_{i}.jpg").write_bytes(jpeg)


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    _write_image_folder(tmp_path, ["cat", "ant", "bee"], 3, rng)
    name = f"folder:{tmp_path}"
    info = data.get_dataset_info(name)
    assert info.num_classes == 3
    eval_dataset = data.load_dataset(
        name, "val", batch_size=4, training=False, image_size=64
    )
    images, labels = _as_numpy(eval_dataset)
    assert images.shape == (9, 64, 64, 3)
    assert images.min() >= 0.0 and images.max() <= 255.0
    # Sorted classes ant=0, bee=1, cat=2, interleaved file order.
    np.testing.assert_array_equal(labels, [0, 1, 2] * 3)
    train_dataset = data.load_dataset(
        name, "train", batch_size=4, training=True, max_examples=8, seed=3
    )
    images, labels = _as_numpy(train_dataset)
    assert images.shape == (8, 224, 224, 3)
    assert sorted(labels) == [0, 0, 0, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="with_categories"):
        data.load_dataset(
            name, "val", batch_size=4, training=False, with_categories=True
        )


def _write_class_folders(root, counts):
    """`root/class_<label>/img_<i>.png` (i zero-padded), 8x8 PNGs of value 10 * i + label."""
    for label, count in enumerate(counts):
        class_dir = root / f"class_{label}"
        class_dir.mkdir(parents=True)
        for i in range(count):
            image = np.full((8, 8, 3), 10 * i + label, np.uint8)
            (class_dir / f"img_{i:02d}.png").write_bytes(tf.io.encode_png(image).numpy())


def test_image_folder_of_class_folders_splits_every_fifth_image_for_validation(tmp_path):
    _write_class_folders(tmp_path, [6, 11])
    name = f"folder:{tmp_path}"
    assert data.get_dataset_info(name).num_classes == 2

    def pixels_and_labels(split):
        images, labels = _as_numpy(data.load_dataset(
            name, split, batch_size=4, training=False, image_size=8))
        return images[:, 0, 0, 0].astype(int).tolist(), labels.tolist()

    # Each class's files sorted by name: the 5th, 10th, ... are validation (img_04, img_09).
    assert pixels_and_labels("val") == ([40, 41, 91], [0, 1, 1])
    pixels, labels = pixels_and_labels("train")
    assert sorted(pixels) == sorted([0, 10, 20, 30, 50] + [1, 11, 21, 31, 51, 61, 71, 81, 101])
    assert labels == [p % 10 for p in pixels]
    assert pixels_and_labels("train") == (pixels, labels)  # the same split every time


@pytest.mark.parametrize("counts, found", [
    (None, "no such directory"),
    ([3], r"1 class subfolder\(s\) \['class_0'\]"),
    ([0, 0], "no 'train' images"),
    ([4, 4], "no 'val' images"),
])
def test_bad_image_folder_says_what_it_found(tmp_path, counts, found):
    if counts is not None:
        _write_class_folders(tmp_path, counts)
    root = tmp_path if counts is not None else tmp_path / "missing"
    with pytest.raises(ValueError, match=f"Received: name='folder:{root}' \\({found}"):
        for split in ("train", "val"):
            data.load_dataset(f"folder:{root}", split, batch_size=2, training=False)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"name": "foo"}, "name='foo'"),
        ({"name": "folder:/does/not/exist"}, "name="),
        ({"split": "validation"}, "split='validation'"),
        ({"split": 3}, "split=3"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"image_size": -32}, "image_size=-32"),
        ({"max_examples": 1.5}, "max_examples=1.5"),
        ({"shuffle_buffer": None}, "shuffle_buffer=None"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, argument):
    arguments = {
        "name": "cifar10",
        "split": "test",
        "batch_size": 8,
        "training": False,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=f"Received: {argument}"):
        data.load_dataset(**arguments)


def test_bad_name_lists_allowed_values():
    with pytest.raises(ValueError, match="cifar100"):
        data.load_dataset("cifar", "test", batch_size=8, training=False)
