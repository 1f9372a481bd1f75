"""Which FAISS index to build: a pure function of catalog size, dimension and a memory budget.

The rule, in order:
0. Fewer than `MIN_TRAIN` vectors: `Flat` (too few to train any quantiser well).
1. Up to `EXACT_FLOATS` floats in all (100k vectors of B7's 2560, 200k of 1280) and within
   the budget: `Flat`, exact search. Scanning 100k × 2560 floats takes ~65 ms on one core,
   far under a B7 forward pass (~0.9 s), so nothing is gained by approximating.
2. More, still fitting raw in the budget: `IVF{nlist},Flat` — the same vectors in
   nlist ≈ 4·√n lists, of which `nprobe` = nlist/4 are scanned (recall@5 0.95–0.97 at 300k;
   nlist/16 gave only 0.83).
3. Not fitting raw: `IVF{nlist},SQ8` — one byte per dimension, which lost nothing against
   IVF-Flat in the benchmark (0.843 vs 0.844 at the same probes).
4. Not even that: `IVF{nlist},PQ{m}` — m-byte codes, the largest m dividing the dimension that
   fits. A last resort: recall@5 was only ~0.17 at 1M × 1280.
Recall@5 of each choice against exact search: `benchmarks/search_bench.py` (benchmarks/README.md).
"""

from dataclasses import dataclass

from retrieval.errors import ConfigError

EXACT_FLOATS = 100_000 * 2560
PQ_CODE_SIZES = (64, 48, 32, 24, 16, 8)
MIN_TRAIN = 39 * 256  # FAISS wants 39 training points per centroid; PQ codebooks have 256
OVERHEAD = 1.1  # ids, inverted lists and centroids on top of the codes


@dataclass(frozen=True)
class IndexChoice:
    """A FAISS factory string and the probes to search it with (0: exact)."""

    key: str
    nprobe: int
    bytes_estimate: int


def _nlist(n: int) -> int:
    """A power of two near 4·√n, with at least 39 training points per list."""
    target = max(16, min(65536, int(4 * n**0.5), n // 39))
    return 1 << (target.bit_length() - 1)


def choose_index(n: int, dim: int, budget_bytes: int) -> IndexChoice:
    """The index to build for `n` vectors of `dim` floats within `budget_bytes` of memory."""
    if n < 1 or dim < 1:
        raise ValueError("an index needs at least one vector of at least one dimension")
    raw = n * dim * 4
    if n < MIN_TRAIN or (n * dim <= EXACT_FLOATS and raw <= budget_bytes):
        if raw > budget_bytes:
            raise _too_small(n, dim, budget_bytes)
        return IndexChoice("Flat", 0, raw)
    nlist = _nlist(n)
    nprobe = max(8, min(1024, nlist // 4))
    centroids = nlist * dim * 4
    if raw * OVERHEAD + centroids <= budget_bytes:
        return IndexChoice(f"IVF{nlist},Flat", nprobe, int(raw * OVERHEAD) + centroids)
    sq8 = int(n * (dim + 8) * OVERHEAD) + centroids  # a byte per dimension + ids
    if sq8 <= budget_bytes:
        return IndexChoice(f"IVF{nlist},SQ8", nprobe, sq8)
    for m in PQ_CODE_SIZES:
        if dim % m:
            continue
        size = int(n * (m + 8) * OVERHEAD) + centroids  # codes + ids, per vector
        if size <= budget_bytes:
            return IndexChoice(f"IVF{nlist},PQ{m}", nprobe, size)
    raise _too_small(n, dim, budget_bytes)


def _too_small(n: int, dim: int, budget_bytes: int) -> ConfigError:
    return ConfigError(
        f"{n} vectors of {dim} floats cannot fit {budget_bytes // 2**20} MiB; "
        "raise SNAPFIND_ANN_RAM_BUDGET_MB"
    )
