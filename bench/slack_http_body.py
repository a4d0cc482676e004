"""Unsigned oversized bodies against `citebot slack --http`: the server process's memory before and after.

    python bench/slack_http_body.py [--bodies 4] [--mb 300] [--json]

Starts `citebot slack --http` on a free port of 127.0.0.1 (tokens made up, an empty data dir), waits until it
listens, records its RSS, then sends ``--bodies`` unsigned POSTs of ``--mb`` MiB each at the same time to
``/slack/events`` (one 1 MiB buffer sent over and over, a 120 s limit per request), and reads the server's
RSS and peak RSS (VmHWM) from /proc afterwards. The server is stopped by its PID. Run it with PYTHONPATH set to
another checkout to measure that version instead.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHUNK = b"{" + b" " * (2**20 - 2) + b"}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory(pid: int) -> dict[str, float]:
    """RSS and peak RSS of ``pid`` in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[key].split()[0]) / 1024 for name, key in (("rss_mb", "VmRSS"), ("peak_mb", "VmHWM"))}


def _wait_listening(port: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("citebot slack --http did not start listening")


def _send(port: int, mb: int, results: list[str]) -> None:
    """One unsigned POST of ``mb`` MiB; appends the status (or the error) to ``results``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.putrequest("POST", "/slack/events")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(mb * len(CHUNK)))
        connection.endheaders()
        for _ in range(mb):
            connection.send(CHUNK)
        results.append(str(connection.getresponse().status))
    except OSError as exc:
        results.append(type(exc).__name__)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench-signing-secret",
               "SLACK_API_URL": f"http://127.0.0.1:{_free_port()}/api/", "CITEBOT_SLACK_HTTP_HOST": "127.0.0.1",
               "CITEBOT_SLACK_HTTP_PORT": str(port), "CITEBOT_DATA_DIR": str(Path(tmp) / "data")}
        command = [sys.executable, "-c", "from bot.cli import main; main()", "slack", "--http"]
        process = subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(port, process)
            time.sleep(1)
            before = _memory(process.pid)
            results: list[str] = []
            started = time.perf_counter()
            senders = [threading.Thread(target=_send, args=(port, args.mb, results)) for _ in range(args.bodies)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join(150)
            elapsed = time.perf_counter() - started
            time.sleep(1)
            after = _memory(process.pid)
        finally:
            process.terminate()
            process.wait(10)
    report = {"bodies": args.bodies, "mb_each": args.mb, "replies": sorted(results), "seconds": round(elapsed, 1),
              "rss_before_mb": round(before["rss_mb"]), "rss_after_mb": round(after["rss_mb"]),
              "peak_rss_mb": round(after["peak_mb"])}
    print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
