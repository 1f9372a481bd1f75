"""Decoder fuzz, short: ~200 mutated or lying files of every allowed format, a few seconds.

Each input gives an RGB array within the limits or the one typed `ImageError`, within a time
and a resident-memory bound. `python tools/fuzz_decode.py` runs the same property for longer.
"""

import sys

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_images import MAX_PEAK_GROWTH, MAX_SECONDS, decode_measured, hostile_images

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="measures peak memory through /proc"
)


@settings(
    max_examples=200,
    deadline=None,  # timed below, against MAX_SECONDS
    derandomize=True,  # the same 200 inputs in every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=hostile_images())
def test_decoder_gives_an_array_or_one_typed_error_in_bounded_time_and_memory(
    data: bytes,
) -> None:
    outcome = decode_measured(data)
    assert (outcome.shape is None) != (outcome.error is None)
    assert outcome.seconds < MAX_SECONDS, outcome
    assert outcome.peak_growth < MAX_PEAK_GROWTH, outcome
