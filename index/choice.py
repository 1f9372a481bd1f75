"""Which FAISS index to build: a pure function of catalog size, dimension and a memory budget.

The rule, from `benchmarks/search_bench.py` on real IKEA features (Lite0, 1280-d) replicated with
small perturbations, queries from held-out products (docs/scale.md has the figures):
1. Up to `EXACT_FLOATS` floats (20k vectors of 1280, 10k of 2560) and within the budget:
   `Flat`, exact — a scan of a few milliseconds, nothing to tune, filters exact for free.
2. More, with raw vectors + graph in the budget: `HNSW32,Flat`, efSearch 128. At 100k × 1280:
   recall@5 0.967, median 0.40 ms (Flat: 167 ms at the same load), 514 MiB against Flat's 488.
   At 100k × 2560 (Lite0 + Lite2 features): 0.974, 0.51 ms, 1003 MiB.
3. Raw vectors do not fit: `HNSW32,SQ8,RFlat` — the graph on SQ8 codes (a byte per dimension)
   in memory, its best 8·k re-ranked by the exact vectors, which the served process maps from
   disk (`CatalogIndex` reads it with IO_FLAG_MMAP_IFC). efSearch 512. At 1M × 1280: 0.872
   recall@5 (plain HNSW32,SQ8: 0.836; efSearch 1024: 0.914), median 1.94 ms, resident
   +1,291 MiB after 700 queries, built in 1,485 s at load 6-10. Brute-force SQ8 reaches 0.960
   at 1M, so the graph, not the codes, loses recall: the 1M recall goal (0.95) is NOT met yet.
4. Not even that: `IVF{nlist},PQ{m}` — m-byte codes, the largest m dividing the dimension that
   fits. A last resort: recall@5 was only ~0.17 at 1M × 1280 (synthetic).
IVF-Flat / IVF-SQ8 lost: at 1M × 1280 IVF2048,SQ8 needed nprobe 1024 for 0.926 at 117 ms.
"""

from dataclasses import dataclass

from retrieval.errors import ConfigError

EXACT_FLOATS = 20_000 * 1280
HNSW_M = 32  # graph neighbours per vector (64 on the bottom layer)
GRAPH_BYTES = 2 * HNSW_M * 4 + 24  # bottom-layer links + levels/offsets, per vector
EF_SEARCH = {"Flat": 128, "SQ8": 512}  # Flat: 0.967 at 100k; SQ8 + re-rank: 0.872 at 1M
REFINE_K_FACTOR = 8  # the graph's best 8·k (on SQ8 codes) re-ranked by the exact vectors
PQ_CODE_SIZES = (64, 48, 32, 24, 16, 8)
MIN_TRAIN = 39 * 256  # FAISS wants 39 training points per centroid; PQ codebooks have 256
OVERHEAD = 1.1  # ids, inverted lists and centroids on top of the codes


@dataclass(frozen=True)
class IndexChoice:
    """A FAISS factory string and how to search it (nprobe for IVF, efSearch for HNSW; 0: n/a)."""

    key: str
    nprobe: int
    bytes_estimate: int  # resident memory; a refine index's exact vectors stay on disk
    ef_search: int = 0
    k_factor: int = 0  # refine indexes: candidates re-ranked exactly, per result asked for

    @property
    def search_params(self) -> str:
        """The search settings as a faiss `ParameterSpace` string ("" when there are none)."""
        refine = f",k_factor_rf={self.k_factor}" if self.k_factor else ""
        if self.ef_search:
            return f"efSearch={self.ef_search}{refine}"
        return f"nprobe={self.nprobe}" if self.nprobe else ""


def _nlist(n: int) -> int:
    """A power of two near 4·√n, with at least 39 training points per list."""
    target = max(16, min(65536, int(4 * n**0.5), n // 39))
    return 1 << (target.bit_length() - 1)


def choose_index(n: int, dim: int, budget_bytes: int) -> IndexChoice:
    """The index to build for `n` vectors of `dim` floats within `budget_bytes` of memory."""
    if n < 1 or dim < 1:
        raise ValueError("an index needs at least one vector of at least one dimension")
    raw = n * dim * 4
    if n * dim <= EXACT_FLOATS and raw <= budget_bytes:
        return IndexChoice("Flat", 0, raw)
    for codes, per_dim, refine in (("Flat", 4, ""), ("SQ8", 1, ",RFlat")):
        size = int(n * (dim * per_dim + GRAPH_BYTES) * OVERHEAD)
        if size <= budget_bytes:
            k_factor = REFINE_K_FACTOR if refine else 0
            return IndexChoice(f"HNSW{HNSW_M},{codes}{refine}", 0, size, EF_SEARCH[codes], k_factor)
    if n < MIN_TRAIN:
        raise _too_small(n, dim, budget_bytes)
    nlist = _nlist(n)
    nprobe = max(8, min(1024, nlist // 4))
    centroids = nlist * dim * 4
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
