"""What the recipes share: a quiet TensorFlow start-up, one-line errors, clean interruptions.

Import it before anything that imports TensorFlow:

    from recipes import cli  # first: TensorFlow starts here, without its start-up logs
    ...
    if __name__ == "__main__":
        cli.run(main)

Start-up: TensorFlow's C++ INFO and WARNING logs are off (`TF_CPP_MIN_LOG_LEVEL=2`
unless set; they repeat the Python errors, e.g. "Local rendezvous is
aborting"), and what TensorFlow writes to stderr while it loads and probes its
devices is replayed without the lines in `START_UP_NOISE` (the oneDNN and
CPU-feature banners, CUDA probing such as "failed call to cuInit" on a
machine without a GPU). Python warnings and C++ errors are kept; absl's
Python INFO logs are off unless `--verbosity` is passed.

`run(main)`: `app.UsageError` (bad flags) prints "error: ..." and a pointer to
`--helpfull`; `Failure` (a bad input file, ...) prints "error: ..."; both exit
1. SIGINT and SIGTERM print one line and exit 130 and 143 (128 + the signal).
"""

import os
import re
import signal
import sys
import tempfile

from absl import app, flags
from absl import logging as absl_logging

START_UP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)"
    r"|^[IE]\d{4} .*(port\.cc|cudart_stub|cpu_feature_guard|cuda_platform|cuda_diagnostics"
    r"|cuda_executor|cuInit)"
    r"|^To enable the following instructions:.*rebuild TensorFlow"
)


class Failure(Exception):
    """A problem the user can fix (a missing or bad file, ...): printed as one line, exit 1."""


class Terminated(BaseException):
    """SIGTERM, raised like `KeyboardInterrupt` is for SIGINT."""


def _start_tensorflow_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not START_UP_NOISE.search(line):
                    sys.stderr.write(line)


def _raise_terminated(number, frame):
    raise Terminated()


def _exit(message, code):
    print(message, file=sys.stderr, flush=True)
    sys.exit(code)


def run(main, interrupted_hint=None):
    """`app.run(main)` with one-line errors and clean SIGINT / SIGTERM exits (module docstring).

    `interrupted_hint()`: what to do after an interruption outside training
    (training itself raises `Interrupted`, which says it).
    """

    def wrapped(argv):
        if not flags.FLAGS["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)
        signal.signal(signal.SIGTERM, _raise_terminated)
        program = os.path.basename(sys.argv[0])
        try:
            return main(argv)
        except app.UsageError as error:
            _exit(f"{program}: error: {error}\n"
                  f"Run `python {sys.argv[0]} --helpfull` to list every flag.", 1)
        except Failure as error:
            _exit(f"{program}: error: {error}", 1)
        except Interrupted as error:
            _exit(f"{program}: {error}", 128 + error.signal_number)
        except (KeyboardInterrupt, Terminated) as error:
            number = signal.SIGINT if isinstance(error, KeyboardInterrupt) else signal.SIGTERM
            hint = f" {interrupted_hint()}" if interrupted_hint else ""
            _exit(f"{program}: stopped by {signal.Signals(number).name}.{hint}", 128 + number)

    app.run(wrapped)


_start_tensorflow_quietly()
from dmnn_keras.training.callbacks import Interrupted  # noqa: E402  (TensorFlow started above)
