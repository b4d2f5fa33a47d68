"""Validating where an export is written."""

import os


def check_output_path(path, directory=False):
    """Returns `path` as a str, or raises ValueError saying why it cannot be written.

    Args:
        path: where the export goes: a file (`directory=False`, e.g. a
            .tflite) or a directory (a SavedModel), in an existing, writable
            parent directory.
    """
    kind = "directory" if directory else "file"
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"path must be a {kind} path. Received: path={path!r}")
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if directory and os.path.isfile(path):
        raise ValueError(f"path must be a directory, not a file. Received: path={path!r}")
    if not directory and os.path.isdir(path):
        raise ValueError(f"path must be a file, not a directory. Received: path={path!r}")
    if not os.path.isdir(parent):
        raise ValueError(
            f"path must be in an existing directory. Received: path={path!r} ({parent} does not exist)"
        )
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"path is not writable. Received: path={path!r}")
    return path
