"""Who holds a lease, and the clocks it is judged by: enough to tell, on the same host,
whether the holder still runs (host, boot, pid namespace, pid, process start time)."""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    """Wall time (written into leases, compared across hosts) and monotonic time (the holder's
    own deadline, which a paused process or a clock step cannot stretch)."""

    def wall(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        # CLOCK_BOOTTIME goes on while the machine sleeps, where CLOCK_MONOTONIC stops: a
        # laptop or VM suspended past its lease must find it lapsed on waking
        boottime = getattr(time, "CLOCK_BOOTTIME", None)
        return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


SYSTEM_CLOCK = SystemClock()


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot, /proc/<pid>/stat field 22);
    None when there is no such process, or only its zombie. "" when /proc cannot tell."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return ""
        return ""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses itself
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


@dataclass(frozen=True)
class Process:
    """Who holds a lease: enough to tell, on the same host, whether that process still runs."""

    user: str
    host: str
    boot_id: str  # a host that rebooted runs none of the processes it had
    pid_ns: str  # containers on one kernel number their processes apart
    pid: int
    start: str  # "" when unknown

    @classmethod
    def current(cls) -> Process:
        try:
            pid_ns = os.readlink("/proc/self/ns/pid")
        except OSError:
            pid_ns = ""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        pid = os.getpid()
        return cls(
            user=user,
            host=socket.gethostname(),
            boot_id=_read("/proc/sys/kernel/random/boot_id"),
            pid_ns=pid_ns,
            pid=pid,
            start=process_start(pid) or "",
        )

    def same_host(self, other: Process) -> bool:
        """Both in one process namespace of one boot of one host: pids mean the same there."""
        return bool(self.boot_id) and (self.host, self.boot_id, self.pid_ns) == (
            other.host,
            other.boot_id,
            other.pid_ns,
        )

    def gone(self, here: Process) -> bool:
        """True only when certain: on ``here``'s host, and the process no longer exists (or its
        pid now belongs to a process started at another time)."""
        if not self.same_host(here):
            return False
        start = process_start(self.pid)
        return start is None or bool(self.start and start and start != self.start)

    def describe(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"
