"""The index choice is a pure function of size, dimension and memory: a golden table."""

import pytest

from index.choice import choose_index
from retrieval.errors import ConfigError

GiB = 2**30
REFINE = "HNSW32,SQ8,RFlat"  # SQ8 codes + graph in memory, exact vectors mapped from disk
SQ8_PARAMS = "efSearch=512,k_factor_rf=8"


@pytest.mark.parametrize(
    ("n", "dim", "budget", "key", "params"),
    [
        (1, 1280, 4 * GiB, "Flat", ""),
        (2_042, 2560, 4 * GiB, "Flat", ""),
        (10_000, 2560, 4 * GiB, "Flat", ""),  # the exact limit counts floats, not vectors
        (20_000, 1280, 4 * GiB, "Flat", ""),
        (20_001, 1280, 4 * GiB, "HNSW32,Flat", "efSearch=128"),
        (10_001, 2560, 4 * GiB, "HNSW32,Flat", "efSearch=128"),
        (100_000, 1280, 4 * GiB, "HNSW32,Flat", "efSearch=128"),  # 594 MB with the graph
        (1_000_000, 1280, 8 * GiB, "HNSW32,Flat", "efSearch=128"),
        (1_000_000, 1280, 4 * GiB, REFINE, SQ8_PARAMS),  # 5.9 GB raw does not fit
        (1_000_000, 1280, 2 * GiB, REFINE, SQ8_PARAMS),  # the 2 GB budget
        (1_000_000, 2560, 4 * GiB, REFINE, SQ8_PARAMS),
        (1_000_000, 2560, 2 * GiB, "IVF2048,PQ64", "nprobe=512"),  # 2.9 GB of SQ8 does not
        (100_000, 1280, 64 * 2**20, "IVF1024,PQ64", "nprobe=256"),  # a tiny budget forces PQ
    ],
)
def test_golden_table(n: int, dim: int, budget: int, key: str, params: str) -> None:
    choice = choose_index(n, dim, budget)
    assert (choice.key, choice.search_params) == (key, params)
    assert choice.bytes_estimate <= budget


def test_pq_code_size_divides_the_dimension() -> None:
    choice = choose_index(1_000_000, 2000, 100 * 2**20)
    m = int(choice.key.split("PQ")[1])
    assert 2000 % m == 0


def test_impossible_budget_is_a_readable_error() -> None:
    with pytest.raises(ConfigError, match="SNAPFIND_ANN_RAM_BUDGET_MB"):
        choose_index(10_000_000, 2560, 2**20)
    with pytest.raises(ConfigError, match="SNAPFIND_ANN_RAM_BUDGET_MB"):
        choose_index(5_000, 2560, 2**20)  # too few to train a quantiser, too many for the budget
    with pytest.raises(ValueError):
        choose_index(0, 2560, GiB)
