"""Which FAISS index to build: a pure function of catalog size, dimension and a memory budget.

The rule, from `benchmarks/search_bench.py` on real IKEA features (Lite0, 1280-d) replicated with
small perturbations, queries from held-out products (docs/scale.md has the figures):
1. Up to `EXACT_FLOATS` floats (4,096 vectors of 1280, 2,048 of 2560) and within the budget:
   `Flat`, exact — a scan under ~0.7 ms, nothing to tune, filters exact for free. Past it the
   lists below win by the issue's own measure (IKEA replicas, sixth round: 5k × 1280 Flat
   0.95 ms vs IVF128,SQ8,RFlat 0.09 ms at recall 0.997; 10k: 2.34 vs 0.14 ms at 0.995), and
   the gap is what a catalog indexed with crops (`--views`, six vectors a picture) pays on
   every query. Fewer vectors than 64 lists train on (2,496) stay exact at any dimension.
2. More: an inverted file over SQ8 codes of each vector's residual from its list's centroid
   (`IVF{nlist},SQ8`: a byte per dimension, ~4·√n lists), `nprobe` 16. The lists a query and a
   vector go to are found by an exact scan of the centroids; a small HNSW graph over them
   (`IVF{nlist}_HNSW32`, the third round's rule) only from `GRAPH_QUANTIZER_FROM` lists: at
   2,048 its approximate assignment cost recall (1M × 1280 IKEA replicas: 0.953 at nprobe 16
   in 2.89 ms through the graph, 0.962 in 2.20 ms without; synthetic: 0.074 against 0.137).
   With the exact vectors also in the budget, they re-rank its best 4·k (`,RFlat`, memory-
   mapped by the served process but counted here: a re-rank that reads them from disk would
   not be fast). At 100k × 1280: 0.999 at 0.86 ms with the re-rank (HNSW32,Flat, the second
   round's choice: 0.967). At 200k: 0.969 without the re-rank (the SQ8 codes' own ceiling),
   1.000 at 1.28 ms with it; 1M × 1280 without it (the 2 GB budget): 0.962 in 1,238 MiB
   (nprobe 8: 0.953); 1M × 2560 (4 GB): 0.984 in 2,469 MiB, 2.7 ms.
3. Not even SQ8: coarser scalar codes, the finest that fits — `IVF{nlist},SQ6`, then `SQ4`
   (sixth round, 1M × 2560 IKEA under 2 GB: SQ6 0.906 in 1,859 MiB, SQ4 0.669; both short of
   0.95, which needs the 4 GiB default budget's SQ8: 0.984). Nothing measured within 2 GB
   reached 0.95: SQ8 after a PCA to 1,792 dimensions 0.873, PQ640 0.695 at 100k.
4. Not even SQ4: `IVF{nlist},PQ{m}np` — m-byte codes, the largest m dividing the dimension
   that fits, without the polysemous training faiss adds by default (search never uses it; it
   took most of a 1,244 s build). A last resort: ~0.17 at 1M × 1280 (synthetic), 0.157 at
   1M × 2560 (IKEA).
nprobe is where the search starts: the writer (`index.probe_tuning`) measures recall@5 of 200
catalog vectors against exact search on the index it wrote and doubles nprobe until 0.95, half
the lists, or no gain — the only part of the rule that looks at the data, because the two
benchmark sources disagree on it (docs/scale.md, fourth round).
Losers, at 1M × 1280: HNSW32 (on SQ8 codes, even with an exact re-rank: 0.872 at efSearch 512,
0.914 at 1024) — among ~500 near-copies of each photo its graph reaches the right cluster but
not its best five; HNSW32,Flat (0.967 at 100k, 0.40 ms) for about the memory IVF-SQ8 with the
exact re-rank needs (0.999 at 100k, 1.000 at 200k). On the synthetic mixture (no near-copies,
many directions of spread) every index measured misses 0.95 within 5 ms (IVF2048,SQ8: 0.137 at
nprobe 16, 0.926 at 1,024 in 100 ms; HNSW32,SQ8 at 200k: 0.925 at efSearch 256): read the
kinds as fitted to catalogs whose photos come in near-alike groups (variants, angles of one
product); the writer's measured nprobe and the manifest's recall say when a catalog is not.
"""

from dataclasses import dataclass

from retrieval.errors import ConfigError

EXACT_FLOATS = 4_096 * 1280
SQ8_NPROBE = 16  # lists scanned per query (the writer may raise it): IKEA 1M 0.962, 8: 0.953
REFINE_K_FACTOR = 4  # the SQ8 scan's best 4·k re-ranked by the exact vectors: 1.000 at 200k
GRAPH_QUANTIZER_FROM = 16_384  # lists; below, queries scan every centroid (2,048 × 1280: ~0.3 ms)
ID_BYTES = 8  # an inverted list stores each vector's id beside its code
SQ_BITS = (8, 6, 4)  # scalar codes a dimension, finest first: 1M × 2560 0.984 / 0.906 / 0.669
PQ_CODE_SIZES = (64, 48, 32, 24, 16, 8)
PER_CENTROID = 39  # training points FAISS wants for each centroid it learns
MIN_TRAIN = PER_CENTROID * 256  # PQ codebooks have 256 centroids
MIN_LISTS = 64  # fewer, and nprobe 16 scans a quarter of the vectors: exact instead
OVERHEAD = 1.1  # ids, inverted lists and centroids on top of the codes


@dataclass(frozen=True)
class IndexChoice:
    """A FAISS factory string and how to search it (nprobe for IVF, efSearch for HNSW; 0: n/a)."""

    key: str
    nprobe: int
    bytes_estimate: int  # memory to serve it fast: a refine's mapped exact vectors count
    ef_search: int = 0
    k_factor: int = 0  # refine indexes: candidates re-ranked exactly, per result asked for

    @property
    def search_params(self) -> str:
        """The search settings as a faiss `ParameterSpace` string ("" when there are none)."""
        parts = [f"efSearch={self.ef_search}"] if self.ef_search else []
        parts += [f"nprobe={self.nprobe}"] if self.nprobe else []
        parts += [f"k_factor_rf={self.k_factor}"] if self.k_factor else []
        return ",".join(parts)


def _nlist(n: int) -> int:
    """A power of two near 4·√n, with at least `PER_CENTROID` training points per list."""
    target = max(1, min(65536, int(4 * n**0.5), n // PER_CENTROID))
    return 1 << (target.bit_length() - 1)


def choose_index(n: int, dim: int, budget_bytes: int) -> IndexChoice:
    """The index to build for `n` vectors of `dim` floats within `budget_bytes` of memory."""
    if n < 1 or dim < 1:
        raise ValueError("an index needs at least one vector of at least one dimension")
    raw = n * dim * 4
    few = n < MIN_LISTS * PER_CENTROID  # too few vectors to train lists on
    if (n * dim <= EXACT_FLOATS or few) and raw <= budget_bytes:
        return IndexChoice("Flat", 0, raw)  # (too few for lists: exact at any dim)
    if few:
        raise _too_small(n, dim, budget_bytes)
    nlist = _nlist(n)
    ivf = f"IVF{nlist}_HNSW32" if nlist >= GRAPH_QUANTIZER_FROM else f"IVF{nlist}"
    centroids = nlist * dim * 4
    nprobe = min(SQ8_NPROBE, nlist)
    sq8 = _codes_bytes(n, dim) + centroids
    if sq8 + raw <= budget_bytes:
        key = f"{ivf},SQ8,RFlat"
        return IndexChoice(key, nprobe, sq8 + raw, k_factor=REFINE_K_FACTOR)
    for bits in SQ_BITS:
        size = _codes_bytes(n, (dim * bits + 7) // 8) + centroids
        if size <= budget_bytes:
            return IndexChoice(f"{ivf},SQ{bits}", nprobe, size)
    if n < MIN_TRAIN:
        raise _too_small(n, dim, budget_bytes)
    nprobe = max(8, min(1024, nlist // 4))
    for m in PQ_CODE_SIZES:
        if dim % m:
            continue
        size = _codes_bytes(n, m) + centroids
        if size <= budget_bytes:
            return IndexChoice(f"IVF{nlist},PQ{m}np", nprobe, size)
    raise _too_small(n, dim, budget_bytes)


def _codes_bytes(n: int, code_size: int) -> int:
    """Memory of `n` codes of `code_size` bytes in inverted lists, with their ids."""
    return int(n * (code_size + ID_BYTES) * OVERHEAD)


def _too_small(n: int, dim: int, budget_bytes: int) -> ConfigError:
    return ConfigError(
        f"{n} vectors of {dim} floats cannot fit {budget_bytes // 2**20} MiB; "
        "raise SNAPFIND_ANN_RAM_BUDGET_MB"
    )
