"""``make bench``: what freightpay costs over bare Temporal, measured side by side on one machine.

Why: freightpay makes every payment a Temporal workflow with search attributes, per-vendor task
queues and a rate limiter. This run says what that costs against the least Temporal needs to do
the same vendor work (a bare workflow with one activity making the same HTTP calls), and against
the same calls with no durability at all, on the same machine, the same server, the same vendor
simulator, in the same run. Every figure is explained in ``docs/benchmarks.md``.

How (``.venv/bin/python scripts/bench.py``, sizes by flags, ``--help``):

1. It starts its own Temporal dev server (the ``temporal`` binary beside this Python; state in
   memory, or ``--db-file`` for an SQLite file; freightpay's search attributes registered; task
   queues of one partition, ``config.temporal.ONE_PARTITION``), the vendor sandbox with no faults
   and no rate limits, a freightpay worker (``python worker.py``, vendor budgets off) and a
   baseline worker (``python scripts/bench.py --baseline-worker``, ``scripts/bench_baseline.py``),
   each a subprocess in its own process group, so their CPU seconds (``/proc/<pid>/stat``) and
   resident memory (``/proc/<pid>/status`` VmRSS) can be read.
2. Idle latency: ``--idle-payments`` of each, one at a time, alternating freightpay and baseline.
3. Throughput: ``--payments`` Alvys customer payments (each on its own Invoiced load, the load
   given, so one vendor call each) start → Paid, ``--concurrency`` in flight (a lane starts a
   payment, awaits its result, starts the next), and as many bare workflows, alternating in
   ``--rounds`` rounds so that drift hits both alike. Latency is the start call → the result.
4. Per payment: vendor calls (the sandbox's request counters, the token endpoint left out),
   history events and billable Actions (counted from a sample of histories by Temporal Cloud's
   definition), CPU milliseconds in each worker, in the server and in this client.
5. The floor: the same vendor calls with plain asyncio + httpx at the same concurrency.
6. Rate-limited: a second sandbox enforcing Alvys's published limits ``--time-scale`` times
   faster (10 per vendor minute = ``10 * scale`` per real minute) and a second freightpay worker
   with ``ALVYS_REQUESTS_PER_MINUTE = 10 * scale``; ``--rate-payments`` started at once; the
   postings per minute as a fraction of the limit (``limit_use``) and the 429s the sandbox sent.
7. Parked: ``--parked`` payments to loads the vendor does not know (404 → NeedsReview, waiting
   for a person); the freightpay worker's RSS once all are parked (a visibility count). The
   server is then stopped, which ends them.

It prints a table and, last, one line::

    bench: payments_per_s=… baseline_per_s=… ratio=… p50_ms=… p99_ms=… calls_per_payment=…
    actions_per_payment=… rss_mb_10k_parked=… limit_use=… http_429=…

(on one line), and writes the same with the machine and the versions to
``bench/results/<timestamp>.json`` (the report: ``scripts/bench_report.py``; the children:
``cli/processes.py``). ``p50_ms``/``p99_ms`` are freightpay's under load (step 3);
the idle figures are in the table and the JSON. The exit status is 1 if any payment did not end
as expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:  # imported as ``scripts.bench`` rather than run as a script
    sys.path.insert(1, str(HERE))

import bench_baseline  # noqa: E402  (beside this file)
import bench_report  # noqa: E402  (beside this file)
from bench_baseline import AlvysCalls, BaselinePayment, BaselineWorkflow  # noqa: E402
from bench_report import STEPS  # noqa: E402

from cli.processes import ChildProcesses, dev_server_args, find_binary, free_port, wait_port  # noqa: E402
from config.temporal import ONE_PARTITION  # noqa: E402
from intake.cash import file_format_of, parse_file, start_file  # noqa: E402
from intake.options import IntakeOptions  # noqa: E402
from intake.parse import parse_body  # noqa: E402
from intake.start import payment_result, start_payment, start_remittance  # noqa: E402
from models.money import Money  # noqa: E402
from models.payment import PaymentInstruction, Source, Target, TargetIds  # noqa: E402
from models.queues import VendorQueue, inline_queues, queue_name, vendor_budgets  # noqa: E402
from models.state import PaymentStatus  # noqa: E402
from models.steps import PaymentPolicy  # noqa: E402
from worker import RATE_MARGIN  # noqa: E402
from workflows.search_attributes import DEFINITIONS  # noqa: E402

#: Wide enough for the tables when the output goes to a file or a pipe (make bench | tee).
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 130)
app = typer.Typer(add_completion=False)

#: The freightpay worker's task queue (its vendor queues are ``bench-alvys-...``).
FP_QUEUE = "bench"
#: The rate-limited run's freightpay worker (its own queues, so nothing else shares the budget).
RL_QUEUE = "bench-rl"
BASELINE_QUEUE = "bench-baseline"
AMOUNT = "100.00"
PAYMENT_DATE = datetime(2026, 11, 20, tzinfo=UTC)
#: Alvys's published budget for each payment endpoint: 10 requests per (vendor) minute.
ALVYS_PER_MINUTE = 10
#: Seconds to let the rate-limited queue's rate settle from the worker's first polls (as in
#: tests/test_rate_limits.py).
RATE_WARM_UP = 3.0
#: Variables of the developer's shell that must not reach the processes this run starts.
FOREIGN_PREFIXES = ("TEMPORAL_", "ALVYS_", "TRANSPORTONE_", "FREIGHTPAY_", "SANDBOX_", "MYCARRIER_", "OTEL_")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Seconds between the live payments sent while a file is worked (each waits for its result).
LIVE_EVERY = 1.0


def policy_for(per_minute: float) -> PaymentPolicy:
    """The policy the stack's intake gives payments when the workers have this Alvys budget (the
    rule of ``config.settings.Settings.policy``, as ``worker_env`` sets the budgets): the queues
    without a budget run inline."""
    budgets = vendor_budgets(
        alvys_posts_per_minute=per_minute, alvys_reads_per_minute=per_minute / 2, transportone_per_minute=0
    )
    return PaymentPolicy(inline_queues=inline_queues(budgets))


#: Payments of the worker without a budget (the throughput, idle, file and parked runs).
FP_POLICY = policy_for(0)

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (``/proc/<pid>/stat`` utime + stime)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": fields from #3 on
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MiB (``/proc/<pid>/status`` VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Processes(ChildProcesses):
    """The run's children (logs in the run's folder; SIGTERM, SIGKILL after 20 s), their CPU and memory.

    Their environment leaves out the developer's service settings (:data:`FOREIGN_PREFIXES`).
    """

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, ROOT, drop_prefixes=FOREIGN_PREFIXES, grace=20.0, kill_grace=10.0)

    def cpu(self, name: str) -> float:
        return cpu_seconds(self.pid(name))

    def rss(self, name: str) -> float:
        return rss_mb(self.pid(name))


async def wait_for_pollers(client: Client, queues: list[tuple[str, TaskQueueType.ValueType]]) -> None:
    """Return once each (queue, type) has a poller: the worker subprocess is up."""
    deadline = time.monotonic() + 120
    for name, kind in queues:
        while True:
            request = DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=name), task_queue_type=kind
            )
            if (await client.workflow_service.describe_task_queue(request)).pollers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker polls {name}")
            await asyncio.sleep(0.2)


async def connect(address: str, *, pydantic: bool) -> Client:
    """A client of the run's server (freightpay's with the pydantic converter, as its intake uses)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if pydantic:
                return await Client.connect(address, data_converter=pydantic_data_converter)
            return await Client.connect(address)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Latencies:
    """Seconds per item; summarised in milliseconds."""

    seconds: list[float] = field(default_factory=list)

    def ms(self, q: float) -> float:
        return percentile(self.seconds, q) * 1000

    def summary(self) -> dict[str, float]:
        mean = sum(self.seconds) / len(self.seconds) * 1000 if self.seconds else 0.0
        return {"mean_ms": mean, "p50_ms": self.ms(50), "p95_ms": self.ms(95), "p99_ms": self.ms(99)}


@dataclass
class Costs:
    """What one kind of work cost over the phases it ran in."""

    count: int = 0
    elapsed: float = 0.0
    latencies: Latencies = field(default_factory=Latencies)
    worker_cpu: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    vendor_calls: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def per_item_ms(self, seconds: float) -> float:
        return seconds / self.count * 1000 if self.count else 0.0


class Meter:
    """CPU seconds of the given processes and of this process, between two readings."""

    def __init__(self, procs: Processes, names: list[str]) -> None:
        self.procs = procs
        self.names = names
        self.before = self._read()

    def _read(self) -> dict[str, float]:
        found = {name: self.procs.cpu(name) for name in self.names}
        found["client"] = time.process_time()
        return found

    def delta(self) -> dict[str, float]:
        after = self._read()
        return {name: after[name] - self.before[name] for name in after}


async def run_lanes(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]], advance: Callable[[], None]
) -> tuple[float, list[float]]:
    """Run ``one(0..count-1)`` with ``concurrency`` lanes; (wall seconds, each item's seconds)."""
    latencies: list[float] = []
    todo = iter(range(count))

    async def lane() -> None:
        for index in todo:  # one iterator shared by every lane: each item runs once
            began = time.perf_counter()
            await one(index)
            latencies.append(time.perf_counter() - began)
            advance()

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, count)))))
    return time.perf_counter() - began, latencies


#: The marker the SDK's core records for a local activity's result (a patch records ``core_patch``).
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def billable_actions(events: Iterable[HistoryEvent]) -> Counter[str]:
    """Temporal Cloud Actions that show in one workflow's history, by kind.

    Following https://docs.temporal.io/cloud/actions: a workflow start (search attributes given
    at the start are free), each activity scheduled and each retry of it (attempt - 1 on its
    started event), each timer (including those of waits with a timeout), each signal, each
    accepted update, each UpsertWorkflowSearchAttributes command (except one that sets only
    TemporalChangeVersion), each workflow-options update, a child workflow start (2), local
    activities (1 per workflow task that recorded local-activity markers; patch markers are free), Nexus operations scheduled or
    cancelled. Queries and heartbeats are Actions too but leave no event (this run sends none).
    """
    found: Counter[str] = Counter()
    marker_tasks: set[int] = set()
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            found["workflow start"] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            found["activity"] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retries = event.activity_task_started_event_attributes.attempt - 1
            if retries > 0:
                found["activity retry"] += retries
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            found["timer"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            found["signal"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            found["update"] += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if set(fields) != {"TemporalChangeVersion"}:
                found["search attribute upsert"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED:
            found["workflow options update"] += 1
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            found["child workflow start"] += 2
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            # Local activities only: a patch's marker (core_patch) is no Action, like the
            # TemporalChangeVersion upsert that goes with it.
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                marker_tasks.add(marker.workflow_task_completed_event_id)
        elif kind in (
            EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
            EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED,
        ):
            found["nexus operation"] += 1
    if marker_tasks:
        found["local activities"] += len(marker_tasks)
    return found


def steps(events: list[HistoryEvent]) -> list[float] | None:
    """Milliseconds of each of :data:`STEPS` in one history (None unless it has that shape)."""

    def at(kind: EventType.ValueType) -> list[float]:
        return [e.event_time.ToNanoseconds() / 1e6 for e in events if e.event_type == kind]

    task_scheduled = at(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
    task_started = at(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
    task_completed = at(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    scheduled = at(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    started = at(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    completed = at(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    if len(task_completed) != 2 or len(scheduled) != 1 or len(started) != 1 or len(completed) != 1:
        return None
    first, last = events[0].event_time.ToNanoseconds() / 1e6, events[-1].event_time.ToNanoseconds() / 1e6
    return [
        task_started[0] - first,
        task_completed[0] - task_started[0],
        started[0] - scheduled[0],
        completed[0] - started[0],
        task_started[1] - task_scheduled[1],
        task_completed[1] - task_started[1],
        last - first,
    ]


@dataclass
class HistoryShape:
    """Events and Actions per workflow over a sample of histories; the idle runs' steps."""

    sampled: int = 0
    events: float = 0.0
    actions: float = 0.0
    action_kinds: dict[str, float] = field(default_factory=dict)
    event_kinds: dict[str, float] = field(default_factory=dict)
    idle_steps_ms: dict[str, float] = field(default_factory=dict)


async def history_shape(client: Client, workflow_ids: list[str], idle_ids: list[str]) -> HistoryShape:
    events = 0
    kinds: Counter[str] = Counter()
    event_kinds: Counter[str] = Counter()
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        events += len(history.events)
        kinds.update(billable_actions(history.events))
        event_kinds.update(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)
    timed: list[list[float]] = []
    for workflow_id in idle_ids:
        found = steps(list((await client.get_workflow_handle(workflow_id).fetch_history()).events))
        if found is not None:
            timed.append(found)
    n = max(len(workflow_ids), 1)
    return HistoryShape(
        sampled=len(workflow_ids),
        events=events / n,
        actions=sum(kinds.values()) / n,
        action_kinds={k: v / n for k, v in sorted(kinds.items())},
        event_kinds={k: v / n for k, v in sorted(event_kinds.items())},
        idle_steps_ms=mean_steps(timed),
    )


def mean_steps(timed: list[list[float]]) -> dict[str, float]:
    """The mean of each step over the histories that had the expected shape."""
    if not timed:
        return {}
    return {name: sum(t[i] for t in timed) / len(timed) for i, name in enumerate(STEPS)}


def sample(ids: list[str], size: int) -> list[str]:
    """``size`` ids spread evenly over ``ids``."""
    if size >= len(ids):
        return list(ids)
    step = len(ids) / size
    return [ids[int(i * step)] for i in range(size)]


# ---------------------------------------------------------------------------------------------
# The work
# ---------------------------------------------------------------------------------------------


def instruction(load: str, reference: str) -> PaymentInstruction:
    """A happy Alvys customer payment: its load given, the amount it owes, USD."""
    return PaymentInstruction(
        source=Source.ALVYS_CUSTOMER, business_key=f"{load}-{reference}", target=Target.ALVYS_CUSTOMER_PAYMENT,
        ids=TargetIds(load_number=load), amount=Money.of(AMOUNT), payment_date=PAYMENT_DATE,
        reference_number=reference,
    )  # fmt: skip


def baseline_payment(load: str, reference: str) -> BaselinePayment:
    return BaselinePayment(load_number=load, amount=float(AMOUNT), reference=reference)


async def seed_loads(sandbox: httpx.AsyncClient, loads: list[str], progress: Progress) -> None:
    """One Invoiced load per payment, owing exactly the payment (so it ends Paid)."""
    task = progress.add_task("creating loads in the sandbox", total=len(loads))

    async def one(index: int) -> None:
        load = {
            "LoadNumber": loads[index],
            "Status": "Invoiced",
            "Billable": {"Amount": AMOUNT, "Currency": 840},
        }
        (await sandbox.post("/_sandbox/alvys/loads", json=load)).raise_for_status()

    await run_lanes(len(loads), 20, one, lambda: progress.advance(task))
    progress.remove_task(task)


async def vendor_calls(sandbox: httpx.AsyncClient) -> int:
    """Alvys requests the sandbox received so far, the token endpoint left out."""
    counts: dict[str, int] = (await sandbox.get("/_sandbox/alvys/requests")).json()
    return sum(n for key, n in counts.items() if key != "oauth/token")


@dataclass
class Options:
    """The flags of a run (see ``main``)."""

    payments: int
    concurrency: int
    rounds: int
    warmup: int
    idle_payments: int
    direct_calls: int
    parked: int
    rate_payments: int
    time_scale: float
    history_sample: int
    parked_timeout: float
    db_file: bool
    results_dir: Path
    file_lines: int = 10_000
    lockbox_invoices: int = 100


def load_number(kind: str, phase: str, n: int, tag: str) -> str:
    return f"L-{kind}-{phase}-{tag}-{n}"


def round_sizes(total: int, rounds: int) -> list[int]:
    """``total`` split into ``rounds`` parts (the last takes the remainder)."""
    rounds = max(1, min(rounds, total))
    sizes = [total // rounds] * rounds
    sizes[-1] += total - sum(sizes)
    return sizes


@dataclass
class SideBySide:
    """freightpay payments and bare workflows on one server and one sandbox, and what each cost."""

    opts: Options
    procs: Processes
    sandbox: httpx.AsyncClient
    sandbox_url: str
    fp_client: Client
    bl_client: Client
    tag: str
    fp: Costs = field(default_factory=Costs)
    bl: Costs = field(default_factory=Costs)
    direct: Costs = field(default_factory=Costs)
    fp_idle: Latencies = field(default_factory=Latencies)
    bl_idle: Latencies = field(default_factory=Latencies)
    direct_idle: Latencies = field(default_factory=Latencies)
    fp_ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    bl_ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def loads(self) -> list[str]:
        """Every load the run pays, to be created in the sandbox first."""
        o = self.opts
        phases = (("warm", o.warmup), ("idle", o.idle_payments), ("run", o.payments))
        found = [
            load_number(k, p, n, self.tag) for k in ("FP", "BL") for p, count in phases for n in range(count)
        ]
        return found + [
            load_number("DX", "run", n, self.tag) for n in range(o.idle_payments + o.direct_calls)
        ]

    async def freightpay(self, phase: str, n: int) -> None:
        """One freightpay payment, start → Paid."""
        order = instruction(load_number("FP", phase, n, self.tag), f"R-{phase}-{n}")
        workflow_id = await start_payment(self.fp_client, order, task_queue=FP_QUEUE, policy=FP_POLICY)
        result = await payment_result(self.fp_client, workflow_id)
        if result.status is not PaymentStatus.PAID:
            self.fp.failures.append(f"{workflow_id}: {result.status.value} ({result.message})")
        self.fp_ids[phase].append(workflow_id)

    async def baseline(self, phase: str, n: int) -> None:
        """One bare workflow, start → result."""
        load = load_number("BL", phase, n, self.tag)
        workflow_id = f"baseline-{load}"
        payment = baseline_payment(load, f"R-{phase}-{n}")
        handle = await self.bl_client.start_workflow(
            BaselineWorkflow.run, payment, id=workflow_id, task_queue=BASELINE_QUEUE
        )
        answer = await handle.result()
        if not bench_baseline.paid(answer):
            self.bl.failures.append(f"{workflow_id}: {answer}")
        self.bl_ids[phase].append(workflow_id)

    async def warm_up(self, progress: Progress) -> None:
        """Unmeasured payments first: imports, caches and connections are paid for here."""
        task = progress.add_task("warm-up", total=2 * self.opts.warmup)
        step = partial(progress.advance, task)
        await run_lanes(self.opts.warmup, self.opts.concurrency, partial(self.freightpay, "warm"), step)
        await run_lanes(self.opts.warmup, self.opts.concurrency, partial(self.baseline, "warm"), step)
        progress.remove_task(task)

    async def idle(self, progress: Progress) -> None:
        """Latency with nothing else running: one payment at a time, alternating the two kinds."""
        task = progress.add_task("idle latency, one at a time", total=2 * self.opts.idle_payments)
        for n in range(self.opts.idle_payments):
            for run, latencies in ((self.freightpay, self.fp_idle), (self.baseline, self.bl_idle)):
                began = time.perf_counter()
                await run("idle", n)
                latencies.seconds.append(time.perf_counter() - began)
                progress.advance(task)
        progress.remove_task(task)

    async def rounds(self, progress: Progress) -> None:
        """Throughput: rounds of freightpay then baseline, ``concurrency`` in flight."""
        sizes = round_sizes(self.opts.payments, self.opts.rounds)
        kinds = (
            ("freightpay", self.freightpay, self.fp, "worker"),
            ("bare Temporal", self.baseline, self.bl, "baseline-worker"),
        )
        offset = 0
        for number, size in enumerate(sizes, 1):
            for name, run, costs, worker in kinds:
                task = progress.add_task(f"round {number}/{len(sizes)}: {name}", total=size)
                calls_before = await vendor_calls(self.sandbox)
                meter = Meter(self.procs, [worker, "temporal"])
                elapsed, latencies = await run_lanes(
                    size,
                    self.opts.concurrency,
                    partial(shifted, run, offset),
                    partial(progress.advance, task),
                )
                used = meter.delta()
                costs.vendor_calls += await vendor_calls(self.sandbox) - calls_before
                costs.count += size
                costs.elapsed += elapsed
                costs.latencies.seconds += latencies
                costs.worker_cpu += used[worker]
                costs.server_cpu += used["temporal"]
                costs.client_cpu += used["client"]
                progress.remove_task(task)
            offset += size

    async def floor(self, progress: Progress) -> None:
        """The same vendor calls with plain asyncio + httpx: idle, then ``concurrency`` in flight."""
        o = self.opts
        async with bench_baseline.http_client() as http:
            calls = AlvysCalls(http, self.sandbox_url)
            await calls.token()
            task = progress.add_task("direct httpx calls", total=o.idle_payments + o.direct_calls)

            async def call(_phase: str, n: int) -> None:
                load = load_number("DX", "run", n, self.tag)
                answer = await calls.post_customer_payment(baseline_payment(load, f"R-DX-{n}"))
                if not bench_baseline.paid(answer):
                    self.direct.failures.append(f"{load}: {answer}")

            for n in range(o.idle_payments):
                began = time.perf_counter()
                await call("idle", n)
                self.direct_idle.seconds.append(time.perf_counter() - began)
                progress.advance(task)
            calls_before = await vendor_calls(self.sandbox)
            meter = Meter(self.procs, [])
            elapsed, latencies = await run_lanes(
                o.direct_calls,
                o.concurrency,
                partial(shifted, call, o.idle_payments),
                partial(progress.advance, task),
            )
            self.direct.count, self.direct.elapsed = o.direct_calls, elapsed
            self.direct.latencies.seconds = latencies
            self.direct.client_cpu = meter.delta()["client"]
            self.direct.vendor_calls = await vendor_calls(self.sandbox) - calls_before
            progress.remove_task(task)


def shifted(run: Callable[[str, int], Awaitable[None]], offset: int, n: int) -> Awaitable[None]:
    """``run("run", offset + n)``: the measured items of a round after those of earlier rounds."""
    return run("run", offset + n)


@dataclass
class RateResult:
    payments: int = 0
    limit_per_minute: float = 0.0
    budget_per_minute: float = 0.0
    accepted: int = 0
    postings_per_minute: float = 0.0
    limit_use: float = 0.0
    http_429: int = 0
    blocks: int = 0
    elapsed_s: float = 0.0
    not_ended: int = 0
    min_gap_s: float = 0.0
    mean_gap_s: float = 0.0


@dataclass
class FileResult:
    """A remittance file worked by the worker without a budget, live payments sent meanwhile."""

    lines: int = 0
    paid: int = 0
    intake_s: float = 0.0
    seconds: float = 0.0
    payments_per_s: float = 0.0
    live_payments: int = 0
    live_not_paid: int = 0
    live: dict[str, float] = field(default_factory=dict)
    #: Where a live payment's time went while the file was worked (mean ms, from their histories).
    live_steps_ms: dict[str, float] = field(default_factory=dict)
    worker_cpu_ms_per_payment: float = 0.0
    server_cpu_ms_per_payment: float = 0.0


@dataclass
class LockboxResult:
    """An X12 820 of explicit invoice references, applied at the published limits."""

    invoices: int = 0
    applied: int = 0
    vendor_calls: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    calls_per_invoice: float = 0.0
    http_429: int = 0
    seconds: float = 0.0
    status: str = ""


@dataclass
class ParkedResult:
    payments: int = 0
    parked: int = 0
    seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_parked_mb: float = 0.0
    rss_peak_mb: float = 0.0
    server_rss_mb: float = 0.0
    worker_cpu_ms_per_payment: float = 0.0
    server_cpu_ms_per_payment: float = 0.0
    timed_out: bool = False


def progress_bar() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=True)


def server_args(binary: str, port: int, folder: Path, db_file: bool) -> list[str]:
    return dev_server_args(
        binary,
        port,
        headless=True,
        db_file=folder / "bench.db" if db_file else None,
        log_level="error",
        search_attributes=DEFINITIONS,
        dynamic_config=ONE_PARTITION,
    )


#: ``--worker-env NAME=VALUE``: settings given to the freightpay workers of the run (to compare one).
WORKER_ENV: dict[str, str] = {}


def worker_env(address: str, sandbox_url: str, queue: str, folder: Path, per_minute: float) -> dict[str, str]:
    return WORKER_ENV | {
        "TEMPORAL_ADDRESS": address,
        "FREIGHTPAY_SANDBOX_URL": sandbox_url,
        "FREIGHTPAY_TASK_QUEUE": queue,
        "FREIGHTPAY_DATA_DIR": str(folder),
        "ALVYS_REQUESTS_PER_MINUTE": f"{per_minute:g}",
        "ALVYS_READS_PER_MINUTE": f"{per_minute / 2:g}",
        "FREIGHTPAY_TRACES": "off",
        "FREIGHTPAY_METRICS_PORT": "0",
    }


async def bench(opts: Options, procs: Processes, folder: Path) -> dict[str, Any]:
    """Every phase of the run, in order; the children are stopped by the caller."""
    temporal_port, sandbox_port = free_port(), free_port()
    address = f"127.0.0.1:{temporal_port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    binary = find_binary("temporal") or "temporal"
    procs.start("temporal", server_args(binary, temporal_port, folder, opts.db_file), {})
    procs.start("sandbox", [sys.executable, "-m", "cli.main", "sandbox", "--port", str(sandbox_port)], {})
    wait_port(temporal_port)
    wait_port(sandbox_port)
    procs.start(
        "worker", [sys.executable, "worker.py"], worker_env(address, sandbox_url, FP_QUEUE, folder, 0)
    )
    baseline_args = ["--address", address, "--task-queue", BASELINE_QUEUE, "--sandbox-url", sandbox_url]
    procs.start(
        "baseline-worker", [sys.executable, "scripts/bench.py", "--baseline-worker", *baseline_args], {}
    )
    fp_client = await connect(address, pydantic=True)
    bl_client = await connect(address, pydantic=False)
    activity, wf = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
    posts = queue_name(FP_QUEUE, VendorQueue.ALVYS_CUSTOMER_PAYMENTS)
    await wait_for_pollers(
        fp_client, [(FP_QUEUE, wf), (posts, activity), (BASELINE_QUEUE, wf), (BASELINE_QUEUE, activity)]
    )
    tag = datetime.now(UTC).strftime("%H%M%S")
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
        side = SideBySide(opts, procs, sandbox, sandbox_url, fp_client, bl_client, tag)
        with progress_bar() as progress:
            await seed_loads(sandbox, side.loads(), progress)
            await side.warm_up(progress)
            await side.idle(progress)
            await side.rounds(progress)
            await side.floor(progress)
    with console.status("reading histories"):
        fp_ids, bl_ids = side.fp_ids, side.bl_ids
        fp_shape = await history_shape(fp_client, sample(fp_ids["run"], opts.history_sample), fp_ids["idle"])
        bl_shape = await history_shape(bl_client, sample(bl_ids["run"], opts.history_sample), bl_ids["idle"])
    procs.stop("baseline-worker")
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox:
        worked = await file_under_live(opts, procs, fp_client, sandbox, folder, tag)
    rate, box = await rate_limited(opts, procs, folder, fp_client, address, tag)
    parked = await park(opts, procs, fp_client, tag)
    return bench_report.report(opts, side, fp_shape, bl_shape, rate, parked, binary, worked, box)


async def rate_limited(
    opts: Options, procs: Processes, folder: Path, client: Client, address: str, tag: str
) -> tuple[RateResult, LockboxResult]:
    """A second sandbox enforcing Alvys's published limits (time-scaled), a second worker keeping
    them: the postings' rate, then an 820 lockbox file's calls per invoice."""
    result = RateResult(payments=opts.rate_payments)
    if opts.rate_payments <= 0 and opts.lockbox_invoices <= 0:
        return result, LockboxResult()
    scale = opts.time_scale
    result.limit_per_minute = ALVYS_PER_MINUTE * scale
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    limits = {"SANDBOX_RATE_LIMITS": "published", "SANDBOX_TIME_SCALE": f"{scale:g}"}
    procs.start("sandbox-limited", [sys.executable, "-m", "cli.main", "sandbox", "--port", str(port)], limits)
    wait_port(port)
    env = worker_env(address, url, RL_QUEUE, folder, result.limit_per_minute)
    procs.start("worker-limited", [sys.executable, "worker.py"], env)
    posts = queue_name(RL_QUEUE, VendorQueue.ALVYS_CUSTOMER_PAYMENTS)
    await wait_for_pollers(
        client,
        [(RL_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), (posts, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)],
    )
    result.budget_per_minute = result.limit_per_minute * RATE_MARGIN
    rl_policy = policy_for(result.limit_per_minute)
    orders = [instruction(f"L-RL-{tag}-{n}", f"R-RL-{n}") for n in range(opts.rate_payments)]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as sandbox:
            with progress_bar() as progress:
                await seed_loads(sandbox, [o.ids.load_number or "" for o in orders], progress)
                await asyncio.sleep(RATE_WARM_UP)
                task = progress.add_task(
                    f"rate-limited: {result.limit_per_minute:g} posts per real minute", total=len(orders)
                )
                began = time.perf_counter()
                ids: list[str] = await asyncio.gather(
                    *(start_payment(client, o, task_queue=RL_QUEUE, policy=rl_policy) for o in orders)
                )

                async def finish(workflow_id: str) -> None:
                    await payment_result(client, workflow_id)
                    progress.advance(task)

                seconds = 60 + 2 * len(orders) * 60 / result.budget_per_minute
                pending: set[asyncio.Task[None]] = set()
                if ids:
                    _, pending = await asyncio.wait(
                        [asyncio.create_task(finish(i)) for i in ids], timeout=seconds
                    )
                for waiting in pending:
                    waiting.cancel()
                result.not_ended = len(pending)
                result.elapsed_s = time.perf_counter() - began
            rows = (await sandbox.get("/_sandbox/alvys/postings", params={"kind": "customer"})).json()
            limits_now: dict[str, Any] = (await sandbox.get("/_sandbox/rate-limits")).json()
            box = await lockbox(opts, client, sandbox, folder, tag, rl_policy)
            after_box: dict[str, Any] = (await sandbox.get("/_sandbox/rate-limits")).json()
    finally:
        procs.stop("worker-limited")
        procs.stop("sandbox-limited")
    endpoints = limits_now["vendors"]["alvys"]["endpoints"]
    result.accepted = int(endpoints.get("invoices/customer-payments", {}).get("accepted", 0))
    result.http_429 = sum(int(e.get("rejected_429", 0)) for e in endpoints.values())
    result.blocks = sum(int(e.get("blocks_started", 0)) for e in endpoints.values())
    moments = sorted(datetime.fromisoformat(r["recorded_at"].replace("Z", "+00:00")) for r in rows)
    if len(moments) >= 2:
        span = (moments[-1] - moments[0]).total_seconds()
        # n postings span n - 1 intervals: the sustained rate is (n - 1) over the span.
        result.postings_per_minute = (len(moments) - 1) / span * 60 if span > 0 else 0.0
        result.limit_use = result.postings_per_minute / result.limit_per_minute
        gaps = [(b - a).total_seconds() for a, b in pairwise(moments)]
        result.min_gap_s, result.mean_gap_s = min(gaps), span / len(gaps)
    box.http_429 = (
        sum(int(e.get("rejected_429", 0)) for e in after_box["vendors"]["alvys"]["endpoints"].values())
        - result.http_429
    )
    return result, box


def remittance_csv(loads: list[str], tag: str) -> bytes:
    """freightpay's remittance CSV: one happy Alvys customer payment per load."""
    rows = ["target,load_number,amount,currency,payment_date,reference"]
    rows += [
        f"alvys-customer-payment,{load},{AMOUNT},USD,{PAYMENT_DATE:%Y-%m-%d},R-FILE-{tag}-{n}"
        for n, load in enumerate(loads)
    ]
    return ("\n".join(rows) + "\n").encode()


async def file_under_live(
    opts: Options, procs: Processes, client: Client, sandbox: httpx.AsyncClient, folder: Path, tag: str
) -> FileResult:
    """A ``--file-lines`` remittance file through the real intake, and meanwhile live payments, one
    at a time, every ``LIVE_EVERY`` seconds until the file is done: the live payments' latency
    (the target: at most twice the idle p50) and the file's own payments per second."""
    result = FileResult(lines=opts.file_lines)
    if opts.file_lines <= 0:
        return result
    loads = [f"L-FILE-{tag}-{n}" for n in range(opts.file_lines)]
    #: At most one live payment per ten lines (one a second stops it sooner).
    live_loads = [f"L-LIVE-{tag}-{n}" for n in range(max(10, opts.file_lines // 10))]
    live = Latencies()
    live_ids: list[str] = []
    with progress_bar() as progress:
        await seed_loads(sandbox, loads, progress)
        await seed_loads(sandbox, live_loads, progress)
        raw = remittance_csv(loads, tag)
        instructions = parse_body("remittance", raw)
        began = time.perf_counter()
        parent, _ = await start_remittance(
            client, raw, instructions, file_name=f"bench-{tag}.csv", task_queue=FP_QUEUE,
            policy=FP_POLICY, data_dir=folder,
        )  # fmt: skip
        meter = Meter(procs, ["worker", "temporal"])
        worked = time.perf_counter()
        result.intake_s = worked - began
        handle = client.get_workflow_handle(parent)
        done = asyncio.create_task(handle.result())
        task = progress.add_task("file lines ended (live payments meanwhile)", total=opts.file_lines)
        n = 0
        while not done.done() and n < len(live_loads):
            if n:  # the first at once, the next ones LIVE_EVERY apart
                await asyncio.wait({done}, timeout=LIVE_EVERY)
            if done.done():
                break
            order = instruction(live_loads[n], f"R-LIVE-{tag}-{n}")
            sent = time.perf_counter()
            workflow_id = await start_payment(client, order, task_queue=FP_QUEUE, policy=FP_POLICY)
            answer = await payment_result(client, workflow_id)
            live.seconds.append(time.perf_counter() - sent)
            live_ids.append(workflow_id)
            result.live_not_paid += answer.status is not PaymentStatus.PAID
            n += 1
            with contextlib.suppress(Exception):
                progress.update(task, completed=(await handle.query("progress")).get("finished", 0))
        ended: dict[str, Any] = await done
        result.seconds = time.perf_counter() - worked
        used = meter.delta()
    result.paid = int(ended.get("by_status", {}).get("Paid", 0))
    result.payments_per_s = opts.file_lines / result.seconds if result.seconds else 0.0
    result.live_payments = len(live.seconds)
    result.live = live.summary()
    result.live_steps_ms = (await history_shape(client, [], live_ids)).idle_steps_ms
    result.worker_cpu_ms_per_payment = used["worker"] / opts.file_lines * 1000
    result.server_cpu_ms_per_payment = used["temporal"] / opts.file_lines * 1000
    return result


def x12_820(invoices: list[str], payer: str, tag: str) -> bytes:
    """One X12 820 remittance: a check paying each invoice its full amount, by explicit reference."""
    total = Money.of(AMOUNT).amount * len(invoices)
    body = [
        "ST*820*0001",
        f"BPR*C*{total}*C*CHK************20261120",
        f"TRN*1*BENCH{tag}*1512345678",
        f"N1*PR*{payer}",
        "ENT*1",
        *(f"RMR*IV*{invoice}*PI*{AMOUNT}*{AMOUNT}" for invoice in invoices),
    ]
    body.append(f"SE*{len(body) + 1}*0001")
    segments = [
        "ISA*00*          *00*          *ZZ*BENCHPAYER     *ZZ*FREIGHTPAY     *261120*1200*U*00401*000000777*0*P*>",
        "GS*RA*BENCHPAYER*FREIGHTPAY*20261120*1200*777*X*004010",
        *body,
        "GE*1*777",
        "IEA*1*000000777",
    ]
    return ("~\n".join(segments) + "~\n").encode()


async def lockbox(
    opts: Options, client: Client, sandbox: httpx.AsyncClient, folder: Path, tag: str, policy: PaymentPolicy
) -> LockboxResult:
    """``--lockbox-invoices`` invoices of one payer, paid by one 820 with their numbers: the Alvys
    calls the sandbox counted (token left out) per invoice, at the published limits."""
    result = LockboxResult(invoices=opts.lockbox_invoices)
    if opts.lockbox_invoices <= 0:
        return result
    payer = f"BENCH PAYER {tag}"
    customer = (
        await sandbox.post(
            "/_sandbox/alvys/customers", json={"Name": payer, "CompanyNumber": f"C-{tag}", "Status": "Active"}
        )
    ).json()
    invoices = [f"INV-LB-{tag}-{n}" for n in range(opts.lockbox_invoices)]
    for n, invoice in enumerate(invoices):
        load = {
            "LoadNumber": f"L-LB-{tag}-{n}", "Status": "Invoiced", "Billable": {"Amount": AMOUNT, "Currency": 840},
            "InvoiceNumber": invoice, "CustomerId": customer["Id"],
        }  # fmt: skip
        (await sandbox.post("/_sandbox/alvys/loads", json=load)).raise_for_status()
    raw = x12_820(invoices, payer, tag)
    fmt = file_format_of(raw, None)
    parsed = parse_file(raw, fmt, IntakeOptions())
    before: dict[str, int] = (await sandbox.get("/_sandbox/alvys/requests")).json()
    began = time.perf_counter()
    with console.status(f"lockbox: an 820 paying {len(invoices)} invoices at the published limits"):
        answer = await start_file(
            client, raw, fmt, parsed, file_name=f"bench-{tag}.820", task_queue=RL_QUEUE, policy=policy,
            data_dir=folder,
        )  # fmt: skip
        states = [
            await asyncio.wait_for(
                client.get_workflow_handle(d["deposit_id"]).result(), 60 + 3 * len(invoices)
            )
            for d in answer["deposits"]
        ]
    result.seconds = time.perf_counter() - began
    after: dict[str, int] = (await sandbox.get("/_sandbox/alvys/requests")).json()
    result.vendor_calls = {
        k: after.get(k, 0) - before.get(k, 0)
        for k in after
        if k != "oauth/token" and after[k] != before.get(k, 0)
    }
    result.calls = sum(result.vendor_calls.values())
    result.calls_per_invoice = result.calls / len(invoices)
    result.applied = sum(len(s.get("applications", [])) for s in states)
    result.status = ", ".join(sorted({str(s.get("status")) for s in states}))
    return result


async def park(opts: Options, procs: Processes, client: Client, tag: str) -> ParkedResult:
    """Payments to unknown loads (404 → NeedsReview): the worker's memory once all wait for a person."""
    result = ParkedResult(payments=opts.parked)
    if opts.parked <= 0:
        return result
    await asyncio.sleep(2)
    result.rss_before_mb = procs.rss("worker")
    query = 'PaymentStatus="NeedsReview" AND ExecutionStatus="Running"'
    meter = Meter(procs, ["worker", "temporal"])
    began = time.perf_counter()
    with progress_bar() as progress:
        started = progress.add_task("parking: started", total=opts.parked)
        parked = progress.add_task("parking: in NeedsReview", total=opts.parked)

        async def one(n: int) -> None:
            order = instruction(f"L-NOPE-{tag}-{n}", f"R-NOPE-{n}")
            await start_payment(client, order, task_queue=FP_QUEUE, policy=FP_POLICY)

        starting = asyncio.create_task(
            run_lanes(opts.parked, opts.concurrency, one, lambda: progress.advance(started))
        )
        deadline = time.monotonic() + opts.parked_timeout
        while True:
            await asyncio.sleep(1)
            result.parked = (await client.count_workflows(query)).count
            result.rss_peak_mb = max(result.rss_peak_mb, procs.rss("worker"))
            progress.update(parked, completed=result.parked)
            if result.parked >= opts.parked and starting.done():
                break
            if time.monotonic() > deadline:
                result.timed_out = True
                starting.cancel()
                break
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    result.seconds = time.perf_counter() - began
    used = meter.delta()
    await asyncio.sleep(2)
    result.rss_parked_mb = procs.rss("worker")
    result.rss_peak_mb = max(result.rss_peak_mb, result.rss_parked_mb)
    result.server_rss_mb = procs.rss("temporal")
    result.worker_cpu_ms_per_payment = used["worker"] / opts.parked * 1000
    result.server_cpu_ms_per_payment = used["temporal"] / opts.parked * 1000
    return result


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit here, so the ``finally`` that stops the children runs."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def main(
    payments: int = typer.Option(
        1000, help="payments of each kind (freightpay, bare Temporal) in the throughput run"
    ),
    concurrency: int = typer.Option(50, help="payments in flight (lanes: start, await the result, next)"),
    rounds: int = typer.Option(2, help="alternating rounds of freightpay and bare Temporal"),
    warmup: int = typer.Option(20, help="unmeasured payments of each kind first"),
    idle_payments: int = typer.Option(50, help="payments of each kind one at a time, for idle latency"),
    direct_calls: int | None = typer.Option(None, help="direct httpx calls (default: --payments)"),
    parked: int = typer.Option(10_000, help="payments parked in NeedsReview for the memory figure (0: skip)"),
    rate_payments: int = typer.Option(60, help="payments in the rate-limited run (0: skip)"),
    time_scale: float = typer.Option(
        6, help="the rate-limited sandbox's time scale (limit: 10 x scale per minute)"
    ),
    history_sample: int = typer.Option(20, help="histories read of each kind for events and actions"),
    parked_timeout: float = typer.Option(1800, help="seconds to wait for every parked payment"),
    file_lines: int = typer.Option(
        10_000, help="lines of the remittance file worked while live payments are sent (0: skip)"
    ),
    lockbox_invoices: int = typer.Option(
        100, help="invoices of the X12 820 applied at the published limits (0: skip)"
    ),
    db_file: bool = typer.Option(
        False, "--db-file", help="keep Temporal's state in an SQLite file (default: in memory)"
    ),
    results_dir: Path = typer.Option(ROOT / "bench" / "results", help="where the JSON result goes"),
    worker_setting: list[str] = typer.Option(
        [], "--worker-env", help="NAME=VALUE for the freightpay workers (e.g. FREIGHTPAY_WORKFLOW_CACHE=100)"
    ),
    baseline_worker: bool = typer.Option(False, "--baseline-worker", hidden=True),
    address: str = typer.Option("", hidden=True),
    task_queue: str = typer.Option(BASELINE_QUEUE, hidden=True),
    sandbox_url: str = typer.Option("", hidden=True),
) -> None:
    """Benchmark freightpay against bare Temporal and direct calls; print a table and the ``bench:`` line."""
    if baseline_worker:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(bench_baseline.serve(address, task_queue, sandbox_url))
        return
    opts = Options(
        payments=payments, concurrency=concurrency, rounds=rounds, warmup=warmup, idle_payments=idle_payments,
        direct_calls=payments if direct_calls is None else direct_calls, parked=parked,
        rate_payments=rate_payments, time_scale=time_scale, history_sample=history_sample,
        parked_timeout=parked_timeout, db_file=db_file, results_dir=results_dir, file_lines=file_lines,
        lockbox_invoices=lockbox_invoices,
    )  # fmt: skip
    WORKER_ENV.update(pair.partition("=")[::2] for pair in worker_setting if "=" in pair)
    folder = Path(tempfile.mkdtemp(prefix="freightpay-bench-"))
    procs = Processes(folder)
    console.print(
        f"bench: {payments} payments of each kind at {concurrency} in flight, {parked} parked, "
        f"{rate_payments} rate-limited; logs in {folder}"
    )
    began, load_before = time.monotonic(), os.getloadavg()
    ok = False
    try:
        with terminate_as_exit():
            run = asyncio.run(bench(opts, procs, folder))
        ok = True
    finally:
        procs.stop_all()
        if ok:
            shutil.rmtree(folder, ignore_errors=True)
    run["duration_s"] = round(time.monotonic() - began, 1)
    run["options"]["worker_env"] = dict(WORKER_ENV)
    # Other work on the machine skews every figure: the load averages say whether there was any.
    run["machine"]["load_average_before"] = [round(x, 2) for x in load_before]
    run["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if not bench_report.publish(run, results_dir, console):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
