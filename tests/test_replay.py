"""Determinism: every recorded history (one per branch) replays against the current workflow code.

A workflow change that would make a running payment decide differently fails here; guard
such a change with ``workflow.patched`` and record new histories with
``.venv/bin/python -m tests.histories.record``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows.deposit import DepositWorkflow
from workflows.payment import PaymentWorkflow
from workflows.remittance import RemittanceWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_branch_has_a_recorded_history() -> None:
    names = {path.stem.split("-run")[0] for path in HISTORIES}
    from tests.histories.record import SCENARIOS

    assert names == set(SCENARIOS)


@pytest.mark.parametrize("runner", ["default sandbox", "worker's runner"])
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path, runner: str) -> None:
    """Each history replays under the SDK's default sandbox and under the runner worker.py
    really uses (modules passed through): the same decisions either way."""
    workflows = [PaymentWorkflow, RemittanceWorkflow, DepositWorkflow]
    if runner == "worker's runner":
        replayer = Replayer(
            workflows=workflows, data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
        )
    else:
        replayer = Replayer(workflows=workflows, data_converter=pydantic_data_converter)
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    await replayer.replay_workflow(history)
