"""The paper's figures for a run, as PNG files (matplotlib's object API: no pyplot state, no backend switch).

* `flops_histogram.png` (DMNN paper Fig. 5): histogram of the executed MACs
  per eval image, with the full model's MACs marked.
* `execution_heatmap.png` (Fig. 7): execution rate of every sub-block
  (rows: block/sub-block) per class (columns; per category when there are
  more than 100 classes).
* `flops_extremes.png` (Fig. 6): for a few classes, the test images that ran
  the fewest and the most MACs.
"""

from matplotlib.figure import Figure
import numpy as np  # noqa: E402

from dmnn_keras.data import CIFAR10_CLASS_NAMES  # noqa: E402
from dmnn_keras.training.evaluation import fetch_images  # noqa: E402

HISTOGRAM = "flops_histogram.png"
HEATMAP = "execution_heatmap.png"
EXTREMES = "flops_extremes.png"


def class_names(dataset, num_classes):
    """Readable class names where the data package has them, else indices."""
    if dataset == "cifar10":
        return list(CIFAR10_CLASS_NAMES)
    return [str(i) for i in range(num_classes)]


def flops_histogram(executed_flops, full_flops, path, title=""):
    """Fig. 5: histogram of per-image executed MACs."""
    executed = np.asarray(executed_flops, dtype=np.float64) / 1e6
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(executed, bins=min(50, max(5, len(np.unique(executed)))), color="tab:blue")
    ax.axvline(full_flops / 1e6, color="tab:red", linestyle="--", label="full model")
    ax.axvline(executed.mean(), color="black", linestyle=":", label=f"mean {executed.mean():.2f}M")
    ax.set_xlabel("executed MACs per image (millions)")
    ax.set_ylabel("images")
    ax.set_title(title or "Executed FLOPs per image")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def execution_heatmap(gates, groups_of, group_names, path, title=""):
    """Fig. 7: rows = sub-blocks, columns = classes (or categories)."""
    rows, row_names = [], []
    for block, block_gates in gates.items():
        block_gates = np.asarray(block_gates)
        for j in range(block_gates.shape[1]):
            rows.append([block_gates[groups_of == g, j].mean() if np.any(groups_of == g) else np.nan
                         for g in range(len(group_names))])
            row_names.append(f"{block}/{j}")
    if not rows:
        rows, row_names = [[np.nan] * len(group_names)], ["(static model: no gates)"]
    matrix = np.asarray(rows, dtype=np.float64)
    fig = Figure(figsize=(max(6, 0.35 * len(group_names) + 3), max(3, 0.22 * len(rows) + 1.5)))
    ax = fig.subplots()
    image = ax.imshow(matrix, aspect="auto", vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_yticks(range(len(row_names)), row_names, fontsize=6)
    ax.set_xticks(range(len(group_names)), group_names, rotation=90, fontsize=7)
    ax.set_title(title or "Sub-block execution rate per class")
    fig.colorbar(image, ax=ax, label="execution rate")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def extremes_indices(executed_flops, labels, classes, per_side):
    """{class: (lowest indices, highest indices)} by executed MACs (stable order)."""
    chosen = {}
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        order = idx[np.argsort(executed_flops[idx], kind="stable")]
        chosen[int(c)] = (order[:per_side], order[::-1][:per_side])
    return chosen


def flops_extremes(data, executed_flops, labels, names, path, classes=None, per_side=4, title=""):
    """Fig. 6: per class, the `per_side` lowest- and highest-MACs images."""
    executed_flops = np.asarray(executed_flops)
    classes = list(range(min(4, len(names)))) if classes is None else classes
    chosen = extremes_indices(executed_flops, labels, classes, per_side)
    images = fetch_images(data, [i for lo, hi in chosen.values() for i in list(lo) + list(hi)])
    fig = Figure(figsize=(2 * per_side * 1.2, max(1, len(chosen)) * 1.4))
    axes = fig.subplots(max(1, len(chosen)), 2 * per_side, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (c, (low, high)) in enumerate(chosen.items()):
        for col, i in enumerate(list(low) + [None] * (per_side - len(low)) + list(high)):
            if i is None or int(i) not in images:
                continue
            ax = axes[row, col]
            ax.imshow(np.clip(images[int(i)], 0, 255).astype(np.uint8))
            ax.set_title(f"{executed_flops[i] / 1e6:.2f}M", fontsize=6)
        axes[row, 0].text(-0.1, 0.5, names[c], transform=axes[row, 0].transAxes,
                          ha="right", va="center", fontsize=7)
    fig.suptitle(title or f"Lowest (left {per_side}) and highest (right {per_side}) executed MACs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_figures(evaluation, dataset, num_classes, category_names, output_dir, title=""):
    """Writes the three figures into `output_dir`; returns their file names."""
    import os

    stats, labels = evaluation["profile"], evaluation["labels"]
    names = class_names(dataset, num_classes)
    flops_histogram(stats["executed_flops"], stats["flops"], os.path.join(output_dir, HISTOGRAM), title)
    if num_classes > 100 and evaluation["categories"] is not None:
        groups_of, group_names = evaluation["categories"], list(category_names)
    else:
        groups_of, group_names = labels, names
    execution_heatmap(evaluation["gates"], groups_of, group_names,
                      os.path.join(output_dir, HEATMAP), title)
    flops_extremes(evaluation["dataset"], stats["executed_flops"], labels, names,
                   os.path.join(output_dir, EXTREMES), title=title)
    return [HISTOGRAM, HEATMAP, EXTREMES]
