"""One inference thread fed by a bounded queue, awaited from the event loop.

The event loop only does I/O; every retrieval call (decode, network, FAISS, metadata) runs
here, one at a time, which is fastest on a small CPU and keeps the Keras model single-entry.
When `max_pending` jobs already wait, `run` refuses at once with `Busy` instead of letting
memory and waiting times grow without bound.
"""

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bot.errors import Busy

T = TypeVar("T")

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, asyncio.Future[Any]]
_STOP = None


class InferenceWorker:
    """`start()` once, `await run(fn, *args)` from the loop, `stop()` to drain and join."""

    def __init__(self, max_pending: int, name: str = "snapfind-inference") -> None:
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs waiting (not counting the one running)."""
        return self._jobs.qsize()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the worker thread; raises `Busy` if the queue is full."""
        if not self._thread.is_alive():
            raise RuntimeError("the inference worker is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        try:
            self._jobs.put_nowait((fn, args, loop, future))
        except queue.Full:
            raise Busy(f"inference queue full ({self._jobs.maxsize} waiting)") from None
        return await future

    def stop(self, timeout: float | None = None) -> None:
        """Let queued jobs finish, then end the thread (blocking; call it off the loop)."""
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join(timeout)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not _STOP:
            fn, args, loop, future = job
            try:
                result = fn(*args)
            except BaseException as error:  # handed to the awaiting coroutine, not lost here
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
