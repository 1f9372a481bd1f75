"""The index choice is a pure function of size, dimension and memory: a golden table."""

import pytest

from index.choice import choose_index
from retrieval.errors import ConfigError

GiB = 2**30


@pytest.mark.parametrize(
    ("n", "dim", "budget", "key", "nprobe"),
    [
        (1, 1280, 4 * GiB, "Flat", 0),
        (2_042, 2560, 4 * GiB, "Flat", 0),
        (100_000, 2560, 4 * GiB, "Flat", 0),  # 1.0 GB raw: exact still fits
        (100_001, 2560, 4 * GiB, "IVF1024,Flat", 256),
        (200_000, 1280, 4 * GiB, "Flat", 0),  # the exact limit counts floats, not vectors
        (300_000, 1280, 4 * GiB, "IVF2048,Flat", 512),
        (1_000_000, 1280, 8 * GiB, "IVF2048,Flat", 512),
        (1_000_000, 2560, 4 * GiB, "IVF2048,SQ8", 512),  # 10 GB raw does not fit; 2.6 GB does
        (10_000, 2560, 64 * 2**20, "IVF256,SQ8", 64),
        (10_000, 2560, 20 * 2**20, "IVF256,PQ64", 64),  # a tiny budget forces PQ
        (200, 1280, 4 * GiB, "Flat", 0),
    ],
)
def test_golden_table(n: int, dim: int, budget: int, key: str, nprobe: int) -> None:
    choice = choose_index(n, dim, budget)
    assert (choice.key, choice.nprobe) == (key, nprobe)
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
