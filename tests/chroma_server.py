"""A real Chroma server (`chroma run`) on 127.0.0.1, started and stopped by the tests that need one.

Every server started is remembered in ``STARTED``, so the suite can check at its end that none is left running
(a CI machine would pile them up).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_executable() -> str:
    """The `chroma` command installed next to this Python (the chromadb package ships it)."""
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else (shutil.which("chroma") or "chroma")


STARTED: list[subprocess.Popen[bytes]] = []


class ChromaServer:
    """`chroma run --host 127.0.0.1 --port P --path DIR` as a child process; ``start()`` again restarts it."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ChromaServer:
        cmd = [chroma_executable(), "run", "--host", "127.0.0.1", "--port", str(self.port), "--path", str(self.path)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1)
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"chroma run exited with {self.process.returncode}") from None
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("chroma run did not come up in time")

    def kill(self) -> None:
        """Stop it abruptly, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
