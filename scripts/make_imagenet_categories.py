"""Derive the coarse ImageNet-1k categories used for category supervision.

The DMNN paper groups the 1000 ImageNet classes into 58 "big categories" with
the WordNet hierarchy. This script rebuilds such a grouping deterministically
from the files in `<repo>/../shared/data/imagenet_hierarchy` and writes
`dmnn_keras/data/imagenet_categories.json`:

    {"num_categories": K,
     "algorithm": "...",
     "categories": [{"id": 0, "wnid": ..., "name": ..., "num_classes": ...}, ...],
     "class_to_category": [1000 ints, in TFDS `imagenet2012` label order]}

Algorithm:

1. Tree. Start from the BREEDS hierarchy (`modified/class_hierarchy.txt`, a
   tree over 890 of the 1000 classes). Refine it with WordNet
   (`wordnet/class_hierarchy.txt`, a DAG): for each class whose BREEDS parent
   is a WordNet ancestor of it, insert the shortest WordNet is-a path between
   the two (e.g. the 118 dog breeds get "hound", "terrier", ... instead of
   hanging directly under "dog"). Each of the 110 classes BREEDS leaves out is
   attached by its shortest WordNet path to the nearest node already in the
   tree. Classes are processed in label order and ties are broken by sorted
   WordNet id; a node is never inserted twice, so the result stays a tree.
2. Cut. Start with one group holding the root. Repeatedly take the largest
   splittable group (most classes; ties by node id) and replace it by its
   children, except that children with fewer than `--min_group_size` classes
   are pooled into one "<parent> (other)" group, which is not split again.
   A split is only taken if it changes the groups. Stop as soon as there are
   at least `--num_categories` groups (the last split may overshoot a little;
   the JSON records the real count).
3. Order. Categories are numbered by the smallest class label they contain.

Usage:

    python scripts/make_imagenet_categories.py \
        [--hierarchy_dir ../shared/data/imagenet_hierarchy] \
        [--num_categories 58] [--min_group_size 8] \
        [--output dmnn_keras/data/imagenet_categories.json]
"""

import argparse
import collections
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_HIERARCHY_DIR = os.path.join(
    os.path.dirname(REPO_ROOT), "shared", "data", "imagenet_hierarchy"
)
DEFAULT_OUTPUT = os.path.join(
    REPO_ROOT, "dmnn_keras", "data", "imagenet_categories.json"
)


def read_edges(path):
    """Returns a list of `(parent, child)` id pairs from a hierarchy file."""
    with open(path, encoding="utf-8") as f:
        return [tuple(line.split()) for line in f if line.strip()]


def read_names(path):
    """Returns a dict node id -> name from a `id<TAB>name` file."""
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                node_id, name = line.split("\t", 1)
                names[node_id] = name
    return names


def shortest_upward_path(start, wordnet_parents, is_target, is_blocked):
    """Breadth-first search up the WordNet DAG.

    Args:
        start: WordNet id to start from.
        wordnet_parents: dict id -> list of parent ids.
        is_target: callable, True for a node the path may end at.
        is_blocked: callable, True for a node the path must not pass through.

    Returns:
        `[start, ..., target]`, or None if no target is reachable.
    """
    predecessor = {start: None}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for parent in sorted(wordnet_parents.get(node, ())):
                if parent in predecessor:
                    continue
                predecessor[parent] = node
                if is_target(parent):
                    path = [parent]
                    while path[-1] != start:
                        path.append(predecessor[path[-1]])
                    return path[::-1]
                if not is_blocked(parent):
                    next_frontier.append(parent)
        frontier = next_frontier
    return None


def build_tree(hierarchy_dir):
    """Builds the refined class tree (step 1 of the module docstring).

    Returns:
        `(class_wnids, class_names, root, children, names)`: the 1000 class
        ids and names in label order, the root id, dict id -> list of child
        ids, dict id -> display name.
    """
    modified_dir = os.path.join(hierarchy_dir, "modified")
    wordnet_dir = os.path.join(hierarchy_dir, "wordnet")
    with open(
        os.path.join(modified_dir, "dataset_class_info.json"), encoding="utf-8"
    ) as f:
        class_info = json.load(f)
    class_info = sorted(class_info, key=lambda row: row[0])
    if [row[0] for row in class_info] != list(range(len(class_info))):
        raise ValueError("dataset_class_info.json must list indices 0..N-1.")
    class_wnids = [row[1] for row in class_info]
    class_names = [row[2] for row in class_info]

    names = read_names(os.path.join(wordnet_dir, "node_names.txt"))
    names.update(read_names(os.path.join(modified_dir, "node_names.txt")))
    parent = {}
    for parent_id, child_id in read_edges(
        os.path.join(modified_dir, "class_hierarchy.txt")
    ):
        if child_id in parent:
            raise ValueError(f"{child_id} has two parents in the BREEDS tree.")
        parent[child_id] = parent_id
    roots = sorted(set(parent.values()) - set(parent))
    if len(roots) != 1:
        raise ValueError(f"Expected one root. Received: roots={roots}")
    root = roots[0]

    wordnet_parents = collections.defaultdict(list)
    for parent_id, child_id in read_edges(
        os.path.join(wordnet_dir, "class_hierarchy.txt")
    ):
        wordnet_parents[child_id].append(parent_id)

    def in_tree(node):
        return node == root or node in parent

    def attach(path):
        # path = [class, n1, ..., anchor]; n1.. are new nodes.
        for child_id, parent_id in zip(path[:-1], path[1:]):
            parent[child_id] = parent_id

    # Refine BREEDS edges parent -> class with the WordNet path between them.
    anchor_of = {}  # inserted WordNet node -> BREEDS parent it refines
    class_set = set(class_wnids)
    for wnid in class_wnids:
        if wnid not in parent:
            continue
        breeds_parent = parent[wnid]
        path = shortest_upward_path(
            wnid,
            wordnet_parents,
            is_target=lambda n, p=breeds_parent: (
                n == p or anchor_of.get(n) == p
            ),
            is_blocked=lambda n: in_tree(n) or n in class_set,
        )
        if path is None or path == [wnid, breeds_parent]:
            continue
        for node in path[1:-1]:
            anchor_of[node] = breeds_parent
        attach(path)

    # Attach the classes BREEDS leaves out to the nearest node in the tree.
    for wnid in class_wnids:
        if in_tree(wnid):
            continue
        path = shortest_upward_path(
            wnid,
            wordnet_parents,
            is_target=in_tree,
            is_blocked=lambda n: n in class_set,
        )
        if path is None:
            raise ValueError(f"Class {wnid} has no path to the tree.")
        attach(path)

    children = collections.defaultdict(list)
    for child_id, parent_id in sorted(parent.items()):
        children[parent_id].append(child_id)
    return class_wnids, class_names, root, children, names


def cut_tree(root, children, class_wnids, num_categories, min_group_size):
    """Cuts the tree into groups (step 2 of the module docstring).

    Returns:
        List of `(wnid, members, is_pool)`: the node a group comes from, the
        tuple of subtree roots it holds, and whether it is an "(other)" pool.
    """
    class_set = set(class_wnids)
    num_classes_under = {}

    def count(node):
        stack, order = [node], []
        while stack:
            n = stack.pop()
            order.append(n)
            stack.extend(children.get(n, ()))
        for n in reversed(order):
            num_classes_under[n] = int(n in class_set) + sum(
                num_classes_under[c] for c in children.get(n, ())
            )

    count(root)
    for wnid in class_wnids:
        if children.get(wnid):
            raise ValueError(f"Class {wnid} is not a leaf of the tree.")

    def size(group):
        return sum(num_classes_under[m] for m in group[1])

    def split(node):
        kids = [c for c in children.get(node, ()) if num_classes_under[c] > 0]
        big = [c for c in kids if num_classes_under[c] >= min_group_size]
        small = [c for c in kids if num_classes_under[c] < min_group_size]
        groups = [(c, (c,), False) for c in big]
        if len(small) == 1:
            groups.append((small[0], (small[0],), False))
        elif small:
            groups.append((node, tuple(small), True))
        return groups

    groups = [(root, (root,), False)]
    while len(groups) < num_categories:
        candidates = []
        for group in groups:
            node, _, is_pool = group
            if is_pool or not children.get(node):
                continue
            new_groups = split(node)
            if [g[1] for g in new_groups] != [group[1]]:
                candidates.append((size(group), node, group, new_groups))
        if not candidates:
            break
        # Largest first; ties broken by the smallest node id.
        _, _, group, new_groups = min(candidates, key=lambda c: (-c[0], c[1]))
        index = groups.index(group)
        groups[index : index + 1] = new_groups
    return groups, num_classes_under


def make_categories(
    hierarchy_dir, num_categories=58, min_group_size=8
):
    """Returns the JSON-ready category dict (see the module docstring)."""
    class_wnids, _, root, children, names = build_tree(hierarchy_dir)
    groups, _ = cut_tree(
        root, children, class_wnids, num_categories, min_group_size
    )
    label_of = {wnid: i for i, wnid in enumerate(class_wnids)}

    def leaves(node):
        stack, found = [node], []
        while stack:
            n = stack.pop()
            if n in label_of:
                found.append(label_of[n])
            stack.extend(children.get(n, ()))
        return found

    group_labels = []
    for wnid, members, is_pool in groups:
        labels = sorted(l for m in members for l in leaves(m))
        name = names.get(wnid, wnid)
        if is_pool:
            name = f"other {name}"
        group_labels.append((labels, wnid, name))
    group_labels.sort(key=lambda g: g[0][0])

    class_to_category = [-1] * len(class_wnids)
    categories = []
    for category_id, (labels, wnid, name) in enumerate(group_labels):
        for label in labels:
            if class_to_category[label] != -1:
                raise ValueError(f"Class {label} is in two categories.")
            class_to_category[label] = category_id
        categories.append(
            {
                "id": category_id,
                "wnid": wnid,
                "name": name,
                "num_classes": len(labels),
            }
        )
    if -1 in class_to_category:
        raise ValueError("Some classes have no category.")
    return {
        "num_categories": len(categories),
        "algorithm": (
            "BREEDS tree refined with WordNet paths; split the largest group "
            f"until >= {num_categories} groups, pooling children with < "
            f"{min_group_size} classes (scripts/make_imagenet_categories.py)"
        ),
        "categories": categories,
        "class_to_category": class_to_category,
    }


def write_json(data, path):
    """Writes `data` compactly: one category per line, labels on one line."""
    lines = ["{"]
    lines.append(f'  "num_categories": {data["num_categories"]},')
    lines.append(f'  "algorithm": {json.dumps(data["algorithm"])},')
    lines.append('  "categories": [')
    rows = [json.dumps(c) for c in data["categories"]]
    lines.append(",\n".join("    " + r for r in rows))
    lines.append("  ],")
    lines.append(
        '  "class_to_category": '
        + json.dumps(data["class_to_category"], separators=(",", ":"))
    )
    lines.append("}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--hierarchy_dir",
        default=DEFAULT_HIERARCHY_DIR,
        help="Folder with modified/ and wordnet/ (default: <repo>/../shared/"
        "data/imagenet_hierarchy).",
    )
    parser.add_argument("--num_categories", type=int, default=58)
    parser.add_argument("--min_group_size", type=int, default=8)
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.hierarchy_dir):
        sys.exit(f"--hierarchy_dir not found: {args.hierarchy_dir}")
    data = make_categories(
        args.hierarchy_dir, args.num_categories, args.min_group_size
    )
    write_json(data, args.output)
    sizes = sorted(c["num_classes"] for c in data["categories"])
    print(
        f"Wrote {data['num_categories']} categories to {args.output}; "
        f"classes per category: min {sizes[0]}, median "
        f"{sizes[len(sizes) // 2]}, max {sizes[-1]}."
    )


if __name__ == "__main__":
    main()
