"""Shared test set-up: quiet TF, CIFAR-10 from ../shared/tfds when present, Keras saving sped up."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # the workers share the cores: a share each
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(
        1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))
_SHARED_TFDS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tfds")
if "TFDS_DATA_DIR" not in os.environ and os.path.isdir(_SHARED_TFDS):
    os.environ["TFDS_DATA_DIR"] = os.path.abspath(_SHARED_TFDS)
elif os.environ.get("TFDS_DATA_DIR") and "://" not in os.environ["TFDS_DATA_DIR"]:
    # A relative dir (the README's `TFDS_DATA_DIR=../shared/tfds`) must survive
    # tests that change the working directory (README snippets, notebooks).
    os.environ["TFDS_DATA_DIR"] = os.path.abspath(os.environ["TFDS_DATA_DIR"])


def pytest_collection_modifyitems(items):
    """Files marked `slow` first, each file's tests kept together (a stable sort).

    pytest-xdist (`--dist loadfile --no-loadscope-reorder`, setup.cfg) deals out files in this
    order, topping a worker up whenever it has 2 tests or fewer left: run last, the one-test
    recipe files (30-90 s each) queued behind each other on one worker while the other idled
    (one ended 117 s or more before the other, at 726 s); run first, the many short files that
    follow even the two out (596 and 606 s).
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _cached_saving_skipsets():
    """Keras' save and load walk with skip sets it never caches (`cache_saving_skipsets`)."""
    from dmnn_keras.keras_compat import cache_saving_skipsets

    cache_saving_skipsets()
