"""Photos are decoded beside the inference thread, a few at a time.

Decoding needs no model, so it does not queue behind other people's searches, and a huge
(but allowed) PNG costs its sender the time it takes to decode without holding up the next
shopper's photo. A bound on how many decode at once keeps memory at a few decoded images,
however many arrive together.
"""

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Decoder:
    """`await run(fn, data)`: `fn` in a thread, at most `slots` at once."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a decoder needs at least one slot")
        self._slots = asyncio.Semaphore(slots)

    async def run(self, fn: Callable[[bytes], T], data: bytes) -> T:
        async with self._slots:
            return await asyncio.to_thread(fn, data)
