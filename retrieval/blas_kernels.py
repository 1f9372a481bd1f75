"""OpenBLAS's kernels, which it picks once, when numpy or faiss loads it: set them before that.

faiss-cpu bundles an OpenBLAS that does not recognise newer CPUs (this machine's AVX-512
Xeon) and falls back to its SSE3 kernels: k-means, the exact truth and every batched product
of an index build then run about 4× slower (docs/scale.md). `OPENBLAS_CORETYPE` forces a
kernel family; here it is chosen from the CPU's own flags, and an operator's value is kept.
"""

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

VARIABLE = "OPENBLAS_CORETYPE"
# The first kernel family whose instructions the CPU has all of.
KERNELS = (
    ("SkylakeX", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"})),
    ("Haswell", frozenset({"avx2", "fma"})),
)
CPUINFO = Path("/proc/cpuinfo")


def kernel_for(flags: frozenset[str]) -> str | None:
    """The OpenBLAS kernel family for a CPU with `flags`; None: leave OpenBLAS its own choice."""
    return next((name for name, needs in KERNELS if needs <= flags), None)


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The first processor's flags in /proc/cpuinfo; empty where there is no such file."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def prefer_native_kernels() -> str | None:
    """Set `OPENBLAS_CORETYPE` from the CPU's flags unless it is set; the value in effect
    (None: OpenBLAS chooses). Call it before anything imports numpy or faiss."""
    if VARIABLE in os.environ:
        return os.environ[VARIABLE]
    kernel = kernel_for(cpu_flags())
    if kernel is None:
        return None
    if {"numpy", "faiss"} & sys.modules.keys():
        log.debug("OpenBLAS already loaded; %s=%s not applied", VARIABLE, kernel)
        return None
    os.environ[VARIABLE] = kernel
    return kernel
