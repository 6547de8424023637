"""The report of a ``make bench`` run: the JSON document, the tables, and the last ``bench:`` line.

Why apart from ``scripts/bench.py``: the bench measures, this module says what was measured. The
JSON's keys and the last line are read by people comparing runs (``docs/benchmarks.md``, the files
in ``bench/results/``) and by ``tests/test_bench.py``: they change only on purpose.

It imports nothing of the bench at run time (the bench runs as ``__main__``; importing it again
would run a second copy): the measured objects come in as arguments.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bench import (
        Costs,
        FileResult,
        HistoryShape,
        Latencies,
        LockboxResult,
        Options,
        ParkedResult,
        RateResult,
        SideBySide,
    )

#: The steps of a workflow with one activity, as its history times them (idle runs, mean ms): the
#: keys of each ``history.idle_steps_ms`` in the JSON and the rows of the idle table, in this order
#: (``bench.steps`` measures them).
STEPS = (
    "server: start -> first workflow task handed to the worker",
    "worker: first workflow task",
    "server: activity task handed to a worker",
    "worker: activity (the vendor call)",
    "server: second workflow task handed to the worker",
    "worker: second workflow task",
    "history: first to last event",
)


#: The targets (issue 13), each a check of the results.
TARGETS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "throughput ratio >= 0.90": lambda r: r["ratio"] >= 0.9,
    "idle p50 <= 1.2 x bare Temporal's": lambda r: 0 < r["idle_ratio"] <= 1.2,
    "1 vendor call per payment": lambda r: abs(r["calls_per_payment"] - 1) < 1e-9,
    "actions per happy payment <= 4": lambda r: r["actions_per_payment"] <= 4,
    "limit use >= 0.97, no 429, no block": lambda r: (
        round(r["limit_use"], 3) >= 0.97 and r["http_429"] == 0 and r["rate_limited"]["blocks"] == 0
    ),
    "worker RSS with 10,000 parked <= 200 MB": lambda r: 0 < r["rss_mb_10k_parked"] <= 200,
    "live p50 under a file <= 2 x idle p50": lambda r: (
        0 < r["live_p50_under_file_ms"] <= 2 * r["idle_p50_ms"]
    ),
    "file payments/s >= 0.9 x payments_per_s": lambda r: (
        r["file_payments_per_s"] >= 0.9 * r["payments_per_s"]
    ),
    "820 lockbox: vendor calls per invoice <= 1.2": lambda r: 0 < r["calls_per_invoice"] <= 1.2,
}


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_mb = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = int(line.split()[1]) / 1024
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": round(memory_mb),
        "platform": platform.platform(),
    }


def versions(binary: str) -> dict[str, str]:
    try:
        server = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        server = "unknown"
    return {
        "python": platform.python_version(),
        "temporalio": package_version("temporalio"),
        "temporal_cli": server,
    }


def costs_json(costs: Costs, idle: Latencies, shape: HistoryShape | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "count": costs.count,
        "per_s": costs.per_second,
        "elapsed_s": costs.elapsed,
        **costs.latencies.summary(),
        "idle": idle.summary(),
        "worker_cpu_ms_per_payment": costs.per_item_ms(costs.worker_cpu),
        "server_cpu_ms_per_payment": costs.per_item_ms(costs.server_cpu),
        "client_cpu_ms_per_payment": costs.per_item_ms(costs.client_cpu),
        "vendor_calls_per_payment": costs.vendor_calls / costs.count if costs.count else 0.0,
        "failures": costs.failures[:20],
        "failed": len(costs.failures),
    }
    if shape is not None:
        found["history"] = asdict(shape)
    return found


def report(
    opts: Options,
    side: SideBySide,
    fp_shape: HistoryShape,
    bl_shape: HistoryShape,
    rate: RateResult,
    parked: ParkedResult,
    binary: str,
    worked: FileResult,
    box: LockboxResult,
) -> dict[str, Any]:
    """Everything measured, with the machine and the versions: what the JSON file holds."""
    fp, bl = side.fp, side.bl
    idle_p50, bare_idle_p50 = side.fp_idle.ms(50), side.bl_idle.ms(50)
    results: dict[str, Any] = {
        "payments_per_s": fp.per_second,
        "baseline_per_s": bl.per_second,
        "ratio": fp.per_second / bl.per_second if bl.per_second else 0.0,
        "p50_ratio": fp.latencies.ms(50) / bl.latencies.ms(50) if bl.latencies.seconds else 0.0,
        "p50_ms": fp.latencies.ms(50),
        "p99_ms": fp.latencies.ms(99),
        "calls_per_payment": fp.vendor_calls / fp.count if fp.count else 0.0,
        "actions_per_payment": fp_shape.actions,
        "rss_mb_10k_parked": parked.rss_parked_mb,
        "limit_use": rate.limit_use,
        "http_429": rate.http_429,
        "idle_p50_ms": idle_p50,
        "idle_ratio": idle_p50 / bare_idle_p50 if bare_idle_p50 else 0.0,
        "live_p50_under_file_ms": worked.live.get("p50_ms", 0.0),
        "file_payments_per_s": worked.payments_per_s,
        "calls_per_invoice": box.calls_per_invoice,
        "freightpay": costs_json(fp, side.fp_idle, fp_shape),
        "baseline": costs_json(bl, side.bl_idle, bl_shape),
        "direct": costs_json(side.direct, side.direct_idle, None),
        "rate_limited": asdict(rate),
        "parked": asdict(parked),
        "file": asdict(worked),
        "lockbox": asdict(box),
    }
    results["targets"] = {name: bool(check(results)) for name, check in TARGETS.items()}
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(binary),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "results": results,
    }


def line(results: dict[str, Any]) -> str:
    r = results
    return (
        f"bench: payments_per_s={r['payments_per_s']:.1f} baseline_per_s={r['baseline_per_s']:.1f} "
        f"ratio={r['ratio']:.2f} p50_ms={r['p50_ms']:.1f} p99_ms={r['p99_ms']:.1f} "
        f"calls_per_payment={r['calls_per_payment']:.2f} actions_per_payment={r['actions_per_payment']:.1f} "
        f"rss_mb_10k_parked={r['rss_mb_10k_parked']:.1f} limit_use={r['limit_use']:.3f} http_429={r['http_429']} "
        f"idle_p50_ms={r['idle_p50_ms']:.1f} idle_ratio={r['idle_ratio']:.2f} "
        f"live_p50_under_file_ms={r['live_p50_under_file_ms']:.1f} "
        f"file_payments_per_s={r['file_payments_per_s']:.1f} calls_per_invoice={r['calls_per_invoice']:.2f}"
    )


def ratio_text(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def tables(run: dict[str, Any]) -> list[Table]:
    """The run as rich tables: side by side, the idle steps, rate-limited and parked, the targets."""
    r = run["results"]
    fp, bl, dx = r["freightpay"], r["baseline"], r["direct"]
    fh, bh = fp["history"], bl["history"]

    title = f"freightpay vs bare Temporal vs direct calls ({fp['count']} each, {run['options']['concurrency']} in flight)"
    main = Table(title=title)
    main.add_column("")
    for name in ("freightpay", "bare Temporal", "direct httpx", "freightpay / bare"):
        main.add_column(name, justify="right")

    def row(label: str, a: float, b: float, c: float | None, digits: int = 1, ratio: bool = True) -> None:
        cells = [f"{a:.{digits}f}", f"{b:.{digits}f}", "-" if c is None else f"{c:.{digits}f}"]
        main.add_row(label, *cells, ratio_text(a, b) if ratio else "")

    row("throughput (payments/s)", fp["per_s"], bl["per_s"], dx["per_s"])
    for q in ("p50_ms", "p95_ms", "p99_ms"):
        row(f"latency {q[:3]} (ms)", fp[q], bl[q], dx[q])
    for q in ("p50_ms", "p99_ms"):
        row(f"idle latency {q[:3]} (ms)", fp["idle"][q], bl["idle"][q], dx["idle"][q])
    row("worker CPU ms / payment", fp["worker_cpu_ms_per_payment"], bl["worker_cpu_ms_per_payment"], None, 2)
    row("server CPU ms / payment", fp["server_cpu_ms_per_payment"], bl["server_cpu_ms_per_payment"], None, 2)
    row(
        "client CPU ms / payment",
        fp["client_cpu_ms_per_payment"],
        bl["client_cpu_ms_per_payment"],
        dx["client_cpu_ms_per_payment"],
        2,
    )
    row(
        "vendor calls / payment",
        fp["vendor_calls_per_payment"],
        bl["vendor_calls_per_payment"],
        dx["vendor_calls_per_payment"],
        2,
        False,
    )
    row("history events / payment", fh["events"], bh["events"], None)
    row("billable actions / payment", fh["actions"], bh["actions"], None)
    for kind in sorted(set(fh["action_kinds"]) | set(bh["action_kinds"])):
        row(f"  {kind}", fh["action_kinds"].get(kind, 0.0), bh["action_kinds"].get(kind, 0.0), None, 1, False)

    live_steps: dict[str, float] = r["file"].get("live_steps_ms") or {}
    live_mean = (r["file"].get("live") or {}).get("mean_ms", 0.0)
    idle = Table(title="where an idle payment's time goes (mean ms, from the idle runs' histories)")
    idle.add_column("step")
    idle.add_column("freightpay", justify="right")
    idle.add_column("bare Temporal", justify="right")
    if live_steps:
        idle.add_column("freightpay, live while a file runs", justify="right")
    for name in STEPS:
        cells = [f"{fh['idle_steps_ms'].get(name, 0.0):.1f}", f"{bh['idle_steps_ms'].get(name, 0.0):.1f}"]
        idle.add_row(name, *cells, *([f"{live_steps.get(name, 0.0):.1f}"] if live_steps else []))
    cells = [f"{fp['idle']['mean_ms']:.1f}", f"{bl['idle']['mean_ms']:.1f}"]
    idle.add_row(
        "client latency (mean, start call -> result)", *cells, *([f"{live_mean:.1f}"] if live_steps else [])
    )

    other = Table(title="a file with live payments, the 820 lockbox, the rate-limited run, parked payments")
    other.add_column("")
    other.add_column("value", justify="right")
    rl, pk, fl, lb = r["rate_limited"], r["parked"], r["file"], r["lockbox"]
    live = fl["live"] or {"p50_ms": 0.0, "p99_ms": 0.0}
    for label, value in (
        ("file: lines (remittance CSV, no vendor budget)", str(fl["lines"])),
        ("  ended Paid", str(fl["paid"])),
        ("  intake: validate, compare, store, start (s)", f"{fl['intake_s']:.1f}"),
        ("  worked in (s) / payments per s", f"{fl['seconds']:.1f} / {fl['payments_per_s']:.1f}"),
        (
            "  worker / server CPU ms per line",
            f"{fl['worker_cpu_ms_per_payment']:.2f} / {fl['server_cpu_ms_per_payment']:.2f}",
        ),
        (
            "  live payments meanwhile (one at a time)",
            f"{fl['live_payments']} ({fl['live_not_paid']} not Paid)",
        ),
        ("  live latency p50 / p99 (ms)", f"{live['p50_ms']:.1f} / {live['p99_ms']:.1f}"),
        (
            "820 lockbox: invoices (explicit references)",
            f"{lb['invoices']} ({lb['applied']} applied; {lb['status']})",
        ),
        (
            "  Alvys calls counted by the sandbox",
            f"{lb['calls']} ({', '.join(f'{k} {v}' for k, v in sorted(lb['vendor_calls'].items()))})",
        ),
        ("  calls per invoice / 429 answers", f"{lb['calls_per_invoice']:.2f} / {lb['http_429']}"),
        ("  elapsed (s)", f"{lb['seconds']:.1f}"),
        ("rate-limited: payments", str(rl["payments"])),
        ("  published limit (posts per real minute)", f"{rl['limit_per_minute']:g}"),
        (
            f"  worker's budget ({rl['budget_per_minute'] / rl['limit_per_minute']:.0%})"
            if rl["limit_per_minute"]
            else "  worker's budget",
            f"{rl['budget_per_minute']:.1f}",
        ),
        ("  postings accepted", str(rl["accepted"])),
        ("  postings per minute", f"{rl['postings_per_minute']:.2f}"),
        ("  limit use", f"{rl['limit_use']:.3f}"),
        ("  429 answers / blocks", f"{rl['http_429']} / {rl['blocks']}"),
        ("  gap between postings: least / mean (s)", f"{rl['min_gap_s']:.3f} / {rl['mean_gap_s']:.3f}"),
        ("  elapsed (s)", f"{rl['elapsed_s']:.1f}"),
        ("parked: payments in NeedsReview", f"{pk['parked']} of {pk['payments']}"),
        ("  time to park them all (s)", f"{pk['seconds']:.1f}" + (" (timed out)" if pk["timed_out"] else "")),
        (
            "  worker RSS before / parked / peak (MB)",
            f"{pk['rss_before_mb']:.1f} / {pk['rss_parked_mb']:.1f} / {pk['rss_peak_mb']:.1f}",
        ),
        ("  server RSS (MB)", f"{pk['server_rss_mb']:.1f}"),
        (
            "  worker / server CPU ms per parked payment",
            f"{pk['worker_cpu_ms_per_payment']:.2f} / {pk['server_cpu_ms_per_payment']:.2f}",
        ),
    ):
        other.add_row(label, value)

    targets = Table(title="targets")
    targets.add_column("target")
    targets.add_column("met")
    for name, met in r["targets"].items():
        targets.add_row(name, "yes" if met else "NO")
    return [main, idle, other, targets]


def publish(run: dict[str, Any], results_dir: Path, console: Console) -> bool:
    """Print the tables, write ``<results_dir>/<timestamp>.json``, print the ``bench:`` line last.

    Sets ``run["line"]``. False if a payment did not end as expected (the exit status is then 1).
    """
    run["line"] = line(run["results"])
    for table in tables(run):
        console.print(table)
    failed = sum(run["results"][k]["failed"] for k in ("freightpay", "baseline", "direct"))
    if failed:
        console.print(
            f"[red]{failed} payments did not end Paid[/red]: {run['results']['freightpay']['failures'][:3]}"
        )
    worked = run["results"]["file"]
    if worked["lines"] and (worked["paid"] != worked["lines"] or worked["live_not_paid"]):
        failed += 1
        console.print(
            f"[red]file: {worked['paid']} of {worked['lines']} lines Paid, "
            f"{worked['live_not_paid']} live payments not Paid[/red]"
        )
    box = run["results"]["lockbox"]
    if box["invoices"] and box["applied"] != box["invoices"]:
        failed += 1
        console.print(f"[red]lockbox: {box['applied']} of {box['invoices']} invoices applied[/red]")
    if run["results"]["rate_limited"]["not_ended"]:
        console.print(
            f"[red]{run['results']['rate_limited']['not_ended']} rate-limited payments did not end[/red]"
        )
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"{stamp}.json"
    path.write_text(json.dumps(run, indent=2) + "\n")
    console.print(f"({timedelta(seconds=int(run['duration_s']))}; written to {path})")
    print(run["line"], flush=True)
    return not (failed or run["results"]["rate_limited"]["not_ended"])
