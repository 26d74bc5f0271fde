"""A fork server for the crash tests: imports the CLI once, then forks one real process per run.

Importing dydx3 and web3 costs a second and a half of CPU per process, which the crash
matrix would pay some eighty times. This process pays it once; each request is served
by a forked child that runs ``provisioner.cli.main.main(args)`` with the request's
environment, working directory and no terminal on stdin, its stdout and stderr written
to files, and exits with main's return code. A failpoint's SIGKILL kills that child
only, exactly as it would kill ``provision``; the server reports the wait status
(negative: the signal). It is single-threaded, so forking it is safe.

Protocol, one JSON object per line on the socket whose fd is the first argument:
``{"args": [...], "env": {...}, "cwd": "...", "out": "file", "err": "file"}``
answered by ``{"rc": N}``.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import provisioner.cli.commands.apply
import provisioner.cli.commands.plan
import provisioner.cli.commands.status
import provisioner.cli.commands.validate  # noqa: F401 - imported once here, inherited by children
from provisioner.cli.main import main


def _child(request: dict[str, object]) -> None:
    os.chdir(str(request["cwd"]))
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(str(request["out"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(str(request["err"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    args = request["args"]
    assert isinstance(args, list)
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - main already reports everything; be sure to exit
        rc = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def serve(channel: socket.socket) -> None:
    reader = channel.makefile("r", encoding="utf-8")
    for line in reader:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            channel.close()
            _child(request)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        channel.sendall((json.dumps({"rc": rc}) + "\n").encode())


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
