"""OpenBLAS's kernels chosen from the CPU's flags before numpy loads, an operator's choice kept."""

import os
import subprocess
import sys
from pathlib import Path

from retrieval.blas_kernels import VARIABLE, cpu_flags, kernel_for

AVX512 = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx2", "fma"})


def test_the_widest_family_the_cpu_has_all_instructions_of() -> None:
    assert kernel_for(AVX512) == "SkylakeX"
    assert kernel_for(frozenset({"avx512f", "avx2", "fma"})) == "Haswell"  # AVX-512 in part
    assert kernel_for(frozenset({"avx2", "fma", "sse4_2"})) == "Haswell"
    assert kernel_for(frozenset({"sse4_2", "avx"})) is None  # OpenBLAS's own choice
    assert kernel_for(frozenset()) is None


def test_flags_are_read_from_cpuinfo_and_a_missing_file_means_none(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t: sse\n")
    assert cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "fma"})
    assert cpu_flags(tmp_path / "absent") == frozenset()


def _coretype_after_import(environ: dict[str, str]) -> str:
    """What a fresh `import snapfind` leaves in OPENBLAS_CORETYPE ("-": nothing)."""
    code = "import os, snapfind; print(os.environ.get('OPENBLAS_CORETYPE', '-'))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_importing_snapfind_sets_the_kernels_unless_the_operator_did() -> None:
    environ = {k: v for k, v in os.environ.items() if k != VARIABLE}
    assert _coretype_after_import(environ) == (kernel_for(cpu_flags()) or "-")
    assert _coretype_after_import(environ | {VARIABLE: "Prescott"}) == "Prescott"
