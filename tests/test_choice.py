"""The index choice is a pure function of size, dimension and memory: a golden table."""

import pytest

from index.choice import choose_index
from retrieval.errors import ConfigError

GiB = 2**30
REFINED = "nprobe=16,k_factor_rf=4"  # SQ8 codes in memory, exact vectors (mapped) re-rank


@pytest.mark.parametrize(
    ("n", "dim", "budget", "key", "params"),
    [
        (1, 1280, 4 * GiB, "Flat", ""),
        (2_042, 1280, 4 * GiB, "Flat", ""),  # IKEA's catalog: a 0.4 ms scan
        (4_096, 1280, 4 * GiB, "Flat", ""),
        (2_048, 2560, 4 * GiB, "Flat", ""),  # the exact limit counts floats, not vectors
        (2_495, 4096, 4 * GiB, "Flat", ""),  # too few for 64 lists: exact at any dim
        (4_097, 1280, 4 * GiB, "IVF64,SQ8,RFlat", REFINED),
        (12_252, 1280, 4 * GiB, "IVF256,SQ8,RFlat", REFINED),  # IKEA with 5 crops a picture
        (20_000, 1280, 4 * GiB, "IVF512,SQ8,RFlat", REFINED),  # 512 lists: 39 rows each
        (10_001, 2560, 4 * GiB, "IVF256,SQ8,RFlat", REFINED),
        (100_000, 1280, 4 * GiB, "IVF1024,SQ8,RFlat", REFINED),  # 628 MiB
        (1_000_000, 1280, 8 * GiB, "IVF2048,SQ8,RFlat", REFINED),  # 6.1 GiB
        (1_000_000, 1280, 4 * GiB, "IVF2048,SQ8", "nprobe=16"),  # exact would not fit
        (1_000_000, 1280, 2 * GiB, "IVF2048,SQ8", "nprobe=16"),  # the 2 GB
        (1_000_000, 2560, 4 * GiB, "IVF2048,SQ8", "nprobe=16"),
        (1_000_000, 2560, 2 * GiB, "IVF2048,SQ6", "nprobe=16"),  # 2.7 GiB of SQ8 does not
        (1_000_000, 2560, 3 * GiB // 2, "IVF2048,SQ4", "nprobe=16"),
        (1_000_000, 2560, GiB, "IVF2048,PQ64np", "nprobe=512"),
        (100_000, 1280, 64 * 2**20, "IVF1024,PQ64np", "nprobe=256"),  # a tiny budget forces PQ
        (20_000_000, 128, 8 * GiB, "IVF16384_HNSW32,SQ8", "nprobe=16"),  # a graph finds lists
    ],
)
def test_golden_table(n: int, dim: int, budget: int, key: str, params: str) -> None:
    choice = choose_index(n, dim, budget)
    assert (choice.key, choice.search_params) == (key, params)
    assert choice.bytes_estimate <= budget


def test_pq_code_size_divides_the_dimension() -> None:
    choice = choose_index(1_000_000, 2000, 100 * 2**20)
    m = int(choice.key.split("PQ")[1].removesuffix("np"))
    assert 2000 % m == 0


def test_impossible_budget_is_a_readable_error() -> None:
    with pytest.raises(ConfigError, match="SNAPFIND_ANN_RAM_BUDGET_MB"):
        choose_index(10_000_000, 2560, 2**20)
    with pytest.raises(ConfigError, match="SNAPFIND_ANN_RAM_BUDGET_MB"):
        choose_index(5_000, 2560, 2**20)  # too few to train PQ codebooks, too many for the budget
        choose_index(2_000, 2560, 2**20)  # too few for lists, too many for the budget
    with pytest.raises(ValueError):
        choose_index(0, 2560, GiB)


def test_the_re_rank_counts_its_exact_vectors_in_the_budget() -> None:
    """Mapped from disk, the exact vectors still need page cache to re-rank fast: a budget one
    byte short of them gets the SQ8 index alone."""
    refined = choose_index(1_000_000, 1280, 8 * GiB)
    assert refined.key.endswith(",RFlat") and refined.bytes_estimate > 1_000_000 * 1280 * 5
    plain = choose_index(1_000_000, 1280, refined.bytes_estimate - 1)
    assert plain.key == refined.key.removesuffix(",RFlat") and plain.k_factor == 0
    assert plain.bytes_estimate < 2 * GiB  # the budget at 1M × 1280


def test_lists_are_found_by_an_exact_scan_until_there_are_many() -> None:
    """A graph over 2,048 centroids lost recall at 1M (0.953 vs 0.962, IKEA; 0.074 vs 0.137,
    synthetic) for nothing a scan of them costs (~0.3 ms): only far more lists get one."""
    assert choose_index(1_000_000, 1280, 4 * GiB).key == "IVF2048,SQ8"
    assert choose_index(16_000_000, 128, 8 * GiB).key.startswith("IVF8192,")
    assert choose_index(17_000_000, 128, 8 * GiB).key.startswith("IVF16384_HNSW32,")
