"""Writes one benchmark's section of BENCHMARKS.md, leaving the others alone."""

import datetime
import json
import os
import platform
import subprocess
import sys

BENCHMARKS_MD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")
HEADER = "# Benchmarks\n\nEvery section is written by the script it names; rerun the command to refresh it.\n"


def machine_description():
    """One line naming the CPU, core count, OS, Python, TF and Keras versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import keras
    import tensorflow as tf

    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")


def measured_where():
    """`{"machine", "date"}` of a result measured now, for `measured_on`."""
    return {"machine": machine_description(), "date": datetime.date.today().isoformat()}


def measured_on(results):
    """The line naming the machine and date of each result that has them (`measured_where`).

    A section's header names the last run's machine only; rows measured before
    machines were recorded are counted as "every other row".
    """
    machines, unrecorded = {}, 0
    for row, r in results.items():
        if r.get("machine"):
            machines.setdefault((r["machine"], r.get("date")), []).append(r.get("row", row))
        else:
            unrecorded += 1
    parts = [f"{machine}, {date}: {', '.join(rows)}" for (machine, date), rows in machines.items()]
    if unrecorded:
        parts.append(f"{'every other row' if parts else 'every row'} ({unrecorded}): an earlier "
                     "session's machine, not recorded")
    return "- Measured on (the header names the last run's machine only): " + "; ".join(parts)


def write_section(name, body, command=None, measured=True):
    """Replaces (or appends) the section `name` of BENCHMARKS.md.

    The section gets a heading, the command that produced it (default: this
    process's command line), the machine and the date, then `body` (markdown).
    `measured=False` (a rewrite from stored results) names no machine: the
    body says where each result was measured (`measured_on`).
    """
    if command is None:
        script = os.path.relpath(os.path.abspath(sys.argv[0]), os.path.dirname(BENCHMARKS_MD))
        data_dir = os.environ.get("TFDS_DATA_DIR")
        if data_dir and os.path.isdir(data_dir):
            data_dir = os.path.relpath(data_dir, os.path.dirname(BENCHMARKS_MD))
        command = (f"TFDS_DATA_DIR={data_dir} " if data_dir else "") + "python " + " ".join(
            [script] + sys.argv[1:])
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=os.path.dirname(BENCHMARKS_MD)).stdout.strip()
    except OSError:
        commit = "unknown"
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    section = (
        f"{begin}\n## {name}\n\n"
        f"- Command: `{command}`\n- Machine: "
        f"{machine_description() if measured else 'none: rewritten from the stored results'}\n"
        f"- Date: {datetime.date.today().isoformat()} (commit {commit or 'unknown'})\n\n"
        f"{body.strip()}\n{end}"
    )
    text = open(BENCHMARKS_MD).read() if os.path.exists(BENCHMARKS_MD) else HEADER
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(BENCHMARKS_MD, "w") as f:
        f.write(text)


def save_json(path, data):
    """Writes `data` to `path` as JSON atomically (a temporary file, then a rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=2)
    os.replace(path + ".tmp", path)
