"""Native libraries' chatter kept off the terminal unless asked for.

TensorFlow's import (CUDA probes, absl banners) and the TFLite interpreter ("Created TensorFlow
Lite XNNPACK delegate") write straight to file descriptor 2, past Python's logging. A user of a
command line wants their own errors there, not that. The file descriptor is silenced only
around those calls; ``AFFECTLITE_VERBOSE=1`` (``--verbose``) keeps everything.
"""

from __future__ import annotations

import contextlib
import os
import sys

VERBOSE_ENV = "AFFECTLITE_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def native_stderr_quiet():
    """Send what native code writes to stderr to /dev/null for the duration (not in verbose mode)."""
    if verbose():
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):    # stderr replaced (pytest capture, IDEs): leave it
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly():
    """Import TensorFlow and let it probe its devices with the chatter hidden; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_quiet():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
