"""A real `redis-server` for the tests: private, on 127.0.0.1, nothing saved, stopped by PID.

Tests that need it skip with a clear reason where Debian's `redis-server` is not installed
(`.ci/run` installs it). It can be stopped and started again on the same port, as a Redis
that goes away and comes back.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

BINARY = "redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """`start`/`stop` a throwaway Redis; `url` is what SNAPFIND_REDIS_URL would be."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            pytest.skip(f"{BINARY} not installed (apt-get install redis-server; .ci/run does)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it answers PING."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{BINARY} exited with {self.process.returncode}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop it by PID and wait until it has exited (its data is gone: nothing is saved)."""
        if self.process is None:
            return
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None
