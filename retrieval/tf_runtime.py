"""TensorFlow process options, which TensorFlow reads once, at import: set them before that."""

import logging
import os
import sys

log = logging.getLogger(__name__)


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
    import tensorflow as tf

    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime has started; the first setting stays
            log.warning("TensorFlow already running; threads=%d not applied", threads)
