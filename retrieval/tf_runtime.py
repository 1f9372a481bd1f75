"""TensorFlow process options, which TensorFlow reads once, at import: set them before that."""

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

log = logging.getLogger(__name__)

# What TensorFlow's C++ side prints at every import whatever TF_CPP_MIN_LOG_LEVEL says (absl
# logs before it reads the setting): two lines, twice. Shown with -v, hidden otherwise.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|oneDNN custom operations are on"
)


def configure_tensorflow(*, threads: int = 0, onednn: bool = True) -> None:
    """Quiet TensorFlow's C++ logs, choose oneDNN kernels and the thread count.

    oneDNN must be chosen before `import tensorflow`; if TensorFlow is already loaded the
    choice can no longer change, and we say so rather than pretend.
    """
    wanted = "1" if onednn else "0"
    if "tensorflow" in sys.modules:
        if os.environ.get("TF_ENABLE_ONEDNN_OPTS") != wanted:
            log.warning("TensorFlow already imported; oneDNN=%s not applied", onednn)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = wanted
    with _startup_noise_filtered():
        import tensorflow as tf

    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime has started; the first setting stays
            log.warning("TensorFlow already running; threads=%d not applied", threads)


@contextlib.contextmanager
def _startup_noise_filtered() -> Iterator[None]:
    """Catch what native code writes to stderr meanwhile; pass on all but `STARTUP_NOISE`."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines(keepends=True):
                if not STARTUP_NOISE.search(line):
                    sys.stderr.write(line)
