"""Tests for the coarse category labels and the ImageNet category script."""

import collections
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dmnn_keras import data

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
HIERARCHY_DIR = REPO_ROOT.parent / "shared" / "data" / "imagenet_hierarchy"
SCRIPT = REPO_ROOT / "scripts" / "make_imagenet_categories.py"
PACKAGED_JSON = REPO_ROOT / "dmnn_keras" / "data" / "imagenet_categories.json"


def test_cifar10_category_lookup():
    labels = np.arange(10)
    categories = data.cifar10_category(labels).numpy()
    assert categories.dtype == np.int32
    names = [data.CIFAR10_CATEGORY_NAMES[c] for c in categories]
    assert names == [
        "vehicle",  # airplane
        "vehicle",  # automobile
        "animal",  # bird
        "animal",  # cat
        "animal",  # deer
        "animal",  # dog
        "animal",  # frog
        "animal",  # horse
        "vehicle",  # ship
        "vehicle",  # truck
    ]
    batch = data.cifar10_category(np.array([[0, 3], [8, 7]], np.int64))
    np.testing.assert_array_equal(batch.numpy(), [[0, 1], [0, 1]])


def test_imagenet_categories_cover_every_class_once():
    categories = data.load_imagenet_categories()
    num_categories = categories["num_categories"]
    assert 50 <= num_categories <= 66
    class_to_category = data.imagenet_class_to_category()
    assert class_to_category.shape == (1000,)
    assert class_to_category.min() == 0
    assert class_to_category.max() == num_categories - 1
    counts = collections.Counter(class_to_category.tolist())
    assert len(counts) == num_categories  # every category non-empty
    assert [c["id"] for c in categories["categories"]] == list(
        range(num_categories)
    )
    for category in categories["categories"]:
        assert category["num_classes"] == counts[category["id"]]
        assert category["name"] and category["wnid"]
    assert len(data.imagenet_category_names()) == num_categories


def test_imagenet_category_lookup():
    labels = np.array([0, 1, 999, 207])
    expected = data.imagenet_class_to_category()[labels]
    np.testing.assert_array_equal(
        data.imagenet_category(labels).numpy(), expected
    )
    # tench and goldfish are both fish.
    assert expected[0] == expected[1]


@pytest.mark.skipif(
    not HIERARCHY_DIR.is_dir(), reason="../shared/data not available"
)
def test_script_regenerates_the_packaged_json(tmp_path):
    output = tmp_path / "categories.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(output)],
        check=True,
        capture_output=True,
        cwd=tmp_path,  # default paths must not depend on the cwd
    )
    assert output.read_text() == PACKAGED_JSON.read_text()
    assert json.loads(output.read_text())["num_categories"] == 58
