"""A second dYdX v3 emulator on the benchmark sandbox's chain, with v3's real rate limits."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from provisioner.sandbox.control import CHAIN_ID
from provisioner.sandbox.processes import free_port

_429 = re.compile(r'"[A-Z]+ [^"]*" 429 ')


class StrictEmulator:
    def __init__(self, rpc_url: str, directory: Path) -> None:
        self.rpc_url = rpc_url
        self.db = directory / "strict-emulator.sqlite3"
        self.log = directory / "strict-emulator.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        argv = [
            sys.executable, "-m", "provisioner.sandbox.emulator",
            "--host", "127.0.0.1", "--port", str(self.port), "--db", str(self.db),
            "--rpc-url", self.rpc_url, "--chain-id", str(CHAIN_ID),
            "--confirmations", "2", "--rate-limits", "strict", "--admin",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.url}/admin/stats", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the strict emulator did not start:\n{self.log.read_text()}")
            time.sleep(0.1)
        # a clean slate: no rate-limit window or request count from the start-up checks
        requests.post(f"{self.url}/admin/reset", timeout=10).raise_for_status()
        requests.delete(f"{self.url}/admin/stats", timeout=10).raise_for_status()
        self._log_offset = self.log.stat().st_size

    def request_counts(self) -> dict[str, int]:
        """Requests per "METHOD /v3/route" since start, 429s included."""
        stats = requests.get(f"{self.url}/admin/stats", timeout=10).json()
        return {str(k): int(v) for k, v in stats["requests"].items()}

    def count_429(self) -> int:
        """429 answers in the access log since start."""
        with open(self.log, "rb") as log:
            log.seek(self._log_offset)
            return len(_429.findall(log.read().decode(errors="replace")))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
