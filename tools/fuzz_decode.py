"""Decoder fuzz, long: the property of tests/test_decode_fuzz.py over many more inputs.

    .venv/bin/python tools/fuzz_decode.py --examples 5000 [--seed N]

Prints how many inputs decoded and how many were refused, the worst time and the worst peak
memory growth of one input, and exits 1 with Hypothesis's shrunk example on any failure.
"""

import argparse
import sys
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz_images import (
    MAX_PEAK_GROWTH,
    MAX_SECONDS,
    Outcome,
    decode_measured,
    hostile_images,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    outcomes: list[Outcome] = []

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=hostile_images())
    def fuzz(data: bytes) -> None:
        outcome = decode_measured(data)
        outcomes.append(outcome)
        assert (outcome.shape is None) != (outcome.error is None)
        assert outcome.seconds < MAX_SECONDS, outcome
        assert outcome.peak_growth < MAX_PEAK_GROWTH, outcome

    warnings.simplefilter("ignore")  # Pillow warns about each corrupt EXIF block it skips
    try:
        fuzz()
    finally:
        decoded = sum(o.shape is not None for o in outcomes)
        print(
            f"{len(outcomes)} inputs: {decoded} decoded, {len(outcomes) - decoded} refused "
            f"with ImageError; worst {max(o.seconds for o in outcomes) * 1000:.0f} ms, "
            f"worst peak growth {max(o.peak_growth for o in outcomes) / 2**20:.1f} MiB "
            f"(bounds {MAX_SECONDS:.0f} s, {MAX_PEAK_GROWTH / 2**20:.0f} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
