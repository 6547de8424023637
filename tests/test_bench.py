"""``make bench`` end to end at a tiny size (issue 6): the run completes, its last line carries every
figure with a sane value, and the JSON result says which machine and versions it ran on.

No timing is asserted: the figures depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

KEYS = (
    "payments_per_s",
    "baseline_per_s",
    "ratio",
    "p50_ms",
    "p99_ms",
    "calls_per_payment",
    "actions_per_payment",
    "rss_mb_10k_parked",
    "limit_use",
    "http_429",
    "idle_p50_ms",
    "idle_ratio",
    "live_p50_under_file_ms",
    "file_payments_per_s",
    "calls_per_invoice",
)
TINY = ["--payments", "20", "--parked", "50", "--rate-payments", "4", "--idle-payments", "5", "--warmup", "5",
        "--file-lines", "40", "--lockbox-invoices", "5"]  # fmt: skip


@pytest.mark.timeout(420)
def test_a_tiny_bench_reports_every_figure(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "scripts/bench.py",
        *TINY,
        "--history-sample",
        "5",
        "--results-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=360)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the bench stops its own children on SIGTERM
        out, err = process.communicate(timeout=90)
        raise AssertionError(
            f"the bench did not finish in 6 minutes:\n{out[-3000:]}\n{err[-3000:]}"
        ) from None
    assert process.returncode == 0, out[-3000:] + err[-3000:]

    last = out.strip().splitlines()[-1]
    assert last.startswith("bench: "), last
    fields = dict(part.split("=", 1) for part in last.removeprefix("bench: ").split())
    assert tuple(fields) == KEYS, last
    v = {key: float(value) for key, value in fields.items()}
    assert v["payments_per_s"] > 0 and v["baseline_per_s"] > 0
    assert v["ratio"] == pytest.approx(v["payments_per_s"] / v["baseline_per_s"], rel=0.1)
    assert 0 < v["p50_ms"] <= v["p99_ms"]
    assert v["calls_per_payment"] == 1.0  # an Alvys payment with its load given: one vendor call
    # At least the workflow start and the post; a whole number (every sampled history has the same shape).
    assert v["actions_per_payment"] >= 2 and v["actions_per_payment"].is_integer()
    assert 0 < v["rss_mb_10k_parked"] < 4096
    assert 0 < v["limit_use"] <= 1.1
    assert v["http_429"] >= 0 and v["http_429"].is_integer()
    assert v["idle_p50_ms"] > 0
    assert v["idle_ratio"] == pytest.approx(v["idle_p50_ms"] / run_idle_bare_p50(tmp_path), rel=0.02)
    assert v["file_payments_per_s"] > 0
    # The live payments sent while the file ran: at least one, each Paid (else the exit status is 1).
    assert v["live_p50_under_file_ms"] > 0
    # 5 invoices: one post each, and the reads that found them (a few, whatever the count).
    assert 1.0 <= v["calls_per_invoice"] <= 3.0

    written = list(tmp_path.glob("*.json"))
    assert len(written) == 1
    run = json.loads(written[0].read_text())
    assert run["line"] == last
    assert run["machine"]["cpu_count"] >= 1 and "cpu_model" in run["machine"]
    assert {"python", "temporalio", "temporal_cli"} <= set(run["versions"])
    assert run["results"]["parked"]["parked"] == 50
    assert run["results"]["rate_limited"]["accepted"] == 4
    assert run["results"]["file"]["paid"] == 40
    assert run["results"]["file"]["live_payments"] >= 1
    lockbox = run["results"]["lockbox"]
    assert lockbox["applied"] == 5 and lockbox["vendor_calls"]["invoices/customer-payments"] == 5
    assert lockbox["calls"] == sum(lockbox["vendor_calls"].values())
    assert set(run["results"]["targets"]) >= {
        "live p50 under a file <= 2 x idle p50",
        "820 lockbox: vendor calls per invoice <= 1.2",
    }


def run_idle_bare_p50(folder: Path) -> float:
    """Bare Temporal's idle p50 as the JSON result gives it (the line has only freightpay's)."""
    run = json.loads(next(folder.glob("*.json")).read_text())
    return float(run["results"]["baseline"]["idle"]["p50_ms"])
