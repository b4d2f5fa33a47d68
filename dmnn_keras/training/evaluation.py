"""Running a trained model over a dataset split: accuracy, gates and FLOPs per image."""

import contextlib
import time

import numpy as np

from dmnn_keras.data import get_dataset_info, load_dataset
from dmnn_keras.gates import predict_gates
from dmnn_keras.profiling import profile


def eval_dataset(dataset, split=None, batch_size=100, max_examples=None, data_dir=None,
                 image_size=None):
    """The deterministic eval pipeline `(images, {"label", "category"})` (or labels only)."""
    info = get_dataset_info(dataset)
    return load_dataset(
        dataset, split or info.eval_split, batch_size=batch_size, training=False,
        max_examples=max_examples, with_categories=info.num_categories > 0, data_dir=data_dir,
        image_size=image_size,
    )


def _labels(batch_labels):
    if isinstance(batch_labels, dict):
        return batch_labels["label"], batch_labels["category"]
    return batch_labels, None


@contextlib.contextmanager
def progress(message, verbose=True):
    """Prints `message ...` before the work inside and its seconds after it (nothing if not verbose)."""
    if verbose:
        print(f"{message} ...", end="", flush=True)
    start = time.perf_counter()
    yield
    if verbose:
        print(f" {time.perf_counter() - start:.1f} s", flush=True)


def evaluate_model(model, dataset, split=None, batch_size=100, max_examples=None, data_dir=None,
                   image_size=None, verbose=False):
    """Evaluates `model` on a split (with `verbose`, printing each stage and its time).

    Returns:
        dict with `profile` (`dmnn_keras.profile` on the split's images),
        `gates` (block name -> `[N, groups]`), `logits` `[N, classes]`,
        `labels` `[N]`, `categories` `[N]` or None, `accuracy`, and `dataset`
        (the eval pipeline, for fetching images again).
    """
    data = eval_dataset(dataset, split, batch_size, max_examples, data_dir, image_size)
    labels, categories = [], []
    for _, batch_labels in data.as_numpy_iterator():
        label, category = _labels(batch_labels)
        labels.append(label)
        if category is not None:
            categories.append(category)
    labels = np.concatenate(labels).astype(np.int64)
    categories = np.concatenate(categories).astype(np.int64) if categories else None
    if verbose:
        print(f"Evaluating on {dataset}/{split or get_dataset_info(dataset).eval_split} "
              f"({len(labels):,} images)", flush=True)
    with progress("  logits and gates", verbose):
        gates, logits = predict_gates(model, data, batch_size=batch_size, return_logits=True)
    with progress("  FLOPs per image", verbose):
        stats = profile(model, predictions=(gates, logits))
    logits = np.asarray(logits, dtype=np.float32)
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == labels))
    return {
        "profile": stats, "gates": gates, "logits": logits, "labels": labels,
        "categories": categories, "accuracy": accuracy, "dataset": data,
    }


def fetch_images(data, indices):
    """Images `{index: [H, W, 3]}` at the given positions of a deterministic dataset."""
    wanted, found, offset = set(int(i) for i in indices), {}, 0
    for images, _ in data.as_numpy_iterator():
        for i in range(len(images)):
            if offset + i in wanted:
                found[offset + i] = images[i]
        offset += len(images)
        if len(found) == len(wanted):
            break
    return found
