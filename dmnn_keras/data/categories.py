"""Coarse "category" labels used for category supervision of the gates.

- CIFAR-10: 2 categories, vehicles = 0 {airplane, automobile, ship, truck},
  animals = 1 {bird, cat, deer, dog, frog, horse}.
- CIFAR-100: the 20 superclasses, read from the TFDS `coarse_label` feature.
- ImageNet-1k: 58 categories cut from the BREEDS/WordNet hierarchy by
  `scripts/make_imagenet_categories.py`, shipped as `imagenet_categories.json`.
"""

import functools
import json

import importlib_resources
import numpy as np
import tensorflow as tf

CIFAR10_CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_CATEGORY_NAMES = ("vehicle", "animal")
# Indexed by the TFDS cifar10 label (order of CIFAR10_CLASS_NAMES).
CIFAR10_CLASS_TO_CATEGORY = (0, 0, 1, 1, 1, 1, 1, 1, 0, 0)

# The TFDS cifar100 `coarse_label` order (the original `coarse_label_names`).
CIFAR100_CATEGORY_NAMES = (
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
)

IMAGENET_CATEGORIES_FILE = "imagenet_categories.json"


def _lookup(class_to_category, labels):
    """Maps integer class labels (any shape) to int32 category labels."""
    table = tf.constant(class_to_category, dtype=tf.int32)
    return tf.gather(table, tf.cast(labels, tf.int32))


def cifar10_category(label):
    """Maps CIFAR-10 labels to the vehicle (0) / animal (1) category.

    Args:
        label: int tensor or array of CIFAR-10 labels in [0, 10), any shape.

    Returns:
        int32 tensor of the same shape with values in {0, 1}.
    """
    return _lookup(CIFAR10_CLASS_TO_CATEGORY, label)


@functools.lru_cache(maxsize=None)
def load_imagenet_categories():
    """Reads the packaged ImageNet category file.

    Returns:
        dict with "num_categories" (int), "categories" (list of dicts with
        "id", "wnid", "name", "num_classes") and "class_to_category" (list of
        1000 ints in TFDS `imagenet2012` label order).
    """
    resource = importlib_resources.files("dmnn_keras.data").joinpath(
        IMAGENET_CATEGORIES_FILE
    )
    return json.loads(resource.read_text(encoding="utf-8"))


def imagenet_class_to_category():
    """Returns the int32 array [1000] mapping ImageNet labels to categories."""
    return np.asarray(
        load_imagenet_categories()["class_to_category"], dtype=np.int32
    )


def imagenet_category_names():
    """Returns the list of the ImageNet category names, by category id."""
    return [c["name"] for c in load_imagenet_categories()["categories"]]


def imagenet_category(label):
    """Maps ImageNet-1k labels to their coarse category.

    Args:
        label: int tensor or array of ImageNet labels in [0, 1000), any shape.

    Returns:
        int32 tensor of the same shape with values in [0, num_categories).
    """
    return _lookup(imagenet_class_to_category(), label)
