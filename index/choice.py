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
   (`IVF{nlist},SQ8`: a byte per dimension), `nprobe` 16, with as many lists as keep 39-78
   vectors each (`list_count`: 4,096 at 200k, 16,384 at 1M; about 4·√n until the eighth
   round), as long as a query's exact scan of the centroids stays within `SCAN_FLOATS`
   (16,384 × 1280, 3–4 ms; 8,192 lists at 2560-d). Lists that small follow groups of
   near-alike pictures; fewer, larger lists cut every group along the directions all products
   vary in (nprobe 16, IVF4096 against IVF1024 at 200k: IKEA replicas 0.981 / 0.969, synthetic
   mixture 0.943 / 0.579; IVF16384 against IVF2048 at 1M × 1280: 0.971 in 3.69 ms / 0.963 in
   1.17 ms, synthetic 0.562 / 0.137; on a CPU without AVX-512, 0.972 in 4.86 ms and, cut past
   the mixture's shared directions, 0.995 in 4.65 ms: eleventh round). No graph finds the
   lists: over 16,384 centroids it was 6× faster on the IKEA replicas (0.970 in 0.59 ms,
   walked 256 wide) and lost the synthetic mixture (0.208), as over 2,048 (third round).
   With the exact vectors also in the budget, they re-rank its best 4·k (`,RFlat`, memory-
   mapped by the served process but counted here: a re-rank that reads them from disk would
   not be fast): 0.999 at 100k, 1.000 at 200k (fifth round). A budget that cannot hold the
   centroids beside the codes halves the lists before it coarsens the codes.
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
16 directions of spread shared by every kind) the lists k-means cut followed those directions
(IVF16384,SQ8: 0.562 at nprobe 16); the writer now cuts past them where its sample's spectrum
shows such a step (`index.list_partition`: 0.995 at nprobe 16, tenth round). The writer's
measured nprobe and the manifest's recall say when a catalog is still hard.
"""

from dataclasses import dataclass

from retrieval.errors import ConfigError

EXACT_FLOATS = 4_096 * 1280
SQ8_NPROBE = 16  # lists scanned per query (the writer may raise it): IKEA 1M 0.971, 8: 0.946
REFINE_K_FACTOR = 4  # the SQ8 scan's best 4·k re-ranked by the exact vectors: 1.000 at 200k
SCAN_FLOATS = 16_384 * 1280  # centroid floats a query scans to find its lists: 3-4 ms
ID_BYTES = 8  # an inverted list stores each vector's id beside its code
SQ_BITS = (8, 6, 4)  # scalar codes a dimension, finest first: 1M × 2560 0.984 / 0.906 / 0.669
PQ_CODE_SIZES = (64, 48, 32, 24, 16, 8)
PER_CENTROID = 39  # training points FAISS wants for each centroid it learns
MIN_TRAIN = PER_CENTROID * 256  # PQ codebooks have 256 centroids
MIN_LISTS = 64  # fewer, and nprobe 16 scans a quarter of the vectors: exact instead
OVERHEAD = 1.1  # ids, inverted lists and centroids on top of the codes
MAX_LISTS = 65_536


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


def list_count(n: int, dim: int) -> int:
    """The most lists, a power of two, with at least `PER_CENTROID` vectors each (39-78 up to
    the cap) and centroids a query scans within `SCAN_FLOATS`: small lists follow a catalog's
    groups of near-alike pictures (module docstring, rule 2)."""
    target = max(1, min(MAX_LISTS, n // PER_CENTROID, SCAN_FLOATS // dim))
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
    most = list_count(n, dim)
    sq8 = _codes_bytes(n, dim)
    lists = _lists_within(budget_bytes - sq8 - raw, most, dim)
    if lists:
        size = sq8 + raw + _centroid_bytes(lists, dim)
        key = f"IVF{lists},SQ8,RFlat"
        return IndexChoice(key, min(SQ8_NPROBE, lists), size, k_factor=REFINE_K_FACTOR)
    for bits in SQ_BITS:
        codes = _codes_bytes(n, (dim * bits + 7) // 8)
        lists = _lists_within(budget_bytes - codes, most, dim)
        if lists:
            size = codes + _centroid_bytes(lists, dim)
            return IndexChoice(f"IVF{lists},SQ{bits}", min(SQ8_NPROBE, lists), size)
    if n < MIN_TRAIN:
        raise _too_small(n, dim, budget_bytes)
    for m in PQ_CODE_SIZES:
        if dim % m:
            continue
        codes = _codes_bytes(n, m)
        lists = _lists_within(budget_bytes - codes, most, dim)
        if lists:
            nprobe = max(8, min(1024, lists // 4))
            return IndexChoice(f"IVF{lists},PQ{m}np", nprobe, codes + _centroid_bytes(lists, dim))
    raise _too_small(n, dim, budget_bytes)


def _lists_within(room: int, most: int, dim: int) -> int:
    """The most lists, halving from `most` down to `MIN_LISTS`, whose centroids fit in `room`
    bytes; 0 if none do. Finer codes come first: fewer lists cost less recall than SQ6 does."""
    lists = most
    while lists >= max(1, MIN_LISTS):
        if _centroid_bytes(lists, dim) <= room:
            return lists
        lists //= 2
    return 0


def _centroid_bytes(lists: int, dim: int) -> int:
    return lists * dim * 4


def _codes_bytes(n: int, code_size: int) -> int:
    """Memory of `n` codes of `code_size` bytes in inverted lists, with their ids."""
    return int(n * (code_size + ID_BYTES) * OVERHEAD)


def _too_small(n: int, dim: int, budget_bytes: int) -> ConfigError:
    return ConfigError(
        f"{n} vectors of {dim} floats cannot fit {budget_bytes // 2**20} MiB; "
        "raise SNAPFIND_ANN_RAM_BUDGET_MB"
    )
