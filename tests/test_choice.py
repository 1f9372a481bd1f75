"""The index choice is a pure function of size, dimension and memory: a golden table."""

import pytest

from index.choice import SCAN_FLOATS, choose_index, list_count
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
        (100_000, 1280, 4 * GiB, "IVF2048,SQ8,RFlat", REFINED),  # 633 MiB, ~49 vectors a list
        (1_000_000, 1280, 8 * GiB, "IVF16384,SQ8,RFlat", REFINED),  # 6.2 GiB
        (1_000_000, 1280, 4 * GiB, "IVF16384,SQ8", "nprobe=16"),  # exact would not fit
        (1_000_000, 1280, 2 * GiB, "IVF16384,SQ8", "nprobe=16"),  # the 2 GB
        (1_000_000, 2560, 4 * GiB, "IVF8192,SQ8", "nprobe=16"),  # the centroids' scan caps
        (1_000_000, 2560, 2 * GiB, "IVF2048,SQ6", "nprobe=16"),  # SQ6 fits with 2,048 lists
        (1_000_000, 2560, 3 * GiB // 2, "IVF8192,SQ4", "nprobe=16"),
        (1_000_000, 2560, GiB, "IVF8192,PQ64np", "nprobe=1024"),
        (100_000, 1280, 64 * 2**20, "IVF2048,PQ64np", "nprobe=512"),  # a tiny budget forces PQ
        (20_000_000, 128, 8 * GiB, "IVF65536,SQ8", "nprobe=16"),  # the most lists
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
    """Mapped from disk, the exact vectors still need page cache to re-rank fast: a budget
    that holds them but not the codes too gets the SQ8 index alone."""
    raw = 1_000_000 * 1280 * 4
    refined = choose_index(1_000_000, 1280, 8 * GiB)
    assert refined.key.endswith(",RFlat") and refined.bytes_estimate > raw * 5 // 4
    plain = choose_index(1_000_000, 1280, raw)
    assert plain.key == refined.key.removesuffix(",RFlat") and plain.k_factor == 0
    assert plain.bytes_estimate < 2 * GiB  # the budget at 1M × 1280


def test_lists_keep_a_few_dozen_vectors_each() -> None:
    """Lists of 39-78 vectors follow groups of near-alike pictures (docs/scale.md, eighth
    round), as long as a query's scan of their centroids stays short; a budget that cannot
    hold the centroids beside the codes halves them first."""
    for n in (5_000, 20_000, 100_000, 200_000, 1_000_000):
        assert 39 <= n / list_count(n, 1280) < 78
    assert list_count(1_000_000, 2560) * 2560 == SCAN_FLOATS  # 8,192: the scan's cap
    assert list_count(4_000_000, 1280) * 1280 == SCAN_FLOATS  # more vectors, no more lists
    assert choose_index(1_000_000, 2560, 2 * GiB).key == "IVF2048,SQ6"  # not SQ4 with 8,192
