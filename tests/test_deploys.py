"""Safe deploys with payments in flight: Worker Versioning on Temporal's own dev server.

A payment starts on version 1 of the Worker Deployment and parks (AwaitingApproval); version 1
goes away, version 2 (with a workflow change, guarded by ``workflow.patched``) comes up and is
made current; the parked payment moves to version 2 by itself (AUTO_UPGRADE) and finishes
correctly when the operator approves.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.service import RPCError

from config.settings import Settings
from intake.start import payment_result, start_payment
from models.state import ActionAnswer, ApproveInput, PaymentStatus
from tests.support import alvys_sandbox as alvys
from tests.support.next_version import PaymentWorkflowNext
from tests.support.payments import FAST, customer, uid, wait_status
from worker import deployment_config, running_worker
from workflows.payment import PaymentWorkflow
from workflows.remittance import RemittanceWorkflow


def versioned(settings: Settings, name: str, build_id: str) -> Settings:
    freightpay = settings.freightpay.model_copy(update={"deployment_name": name, "build_id": build_id})
    return settings.model_copy(update={"freightpay": freightpay})


async def make_current(client: Client, name: str, build_id: str) -> None:
    """Make ``build_id`` the deployment's current version, once its workers have polled."""
    for _ in range(100):
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace, deployment_name=name, build_id=build_id, identity="test"
                )
            )
            return
        except RPCError:
            await asyncio.sleep(0.2)  # the version appears once its workers have polled
    raise AssertionError(f"{name}.{build_id} never became current")


def test_unset_deployment_means_unversioned(settings: Settings) -> None:
    assert deployment_config(settings) is None
    config = deployment_config(versioned(settings, "freightpay", "abc"))
    assert config is not None and config.use_worker_versioning
    with pytest.raises(SystemExit):
        deployment_config(versioned(settings, "freightpay", ""))


async def test_a_parked_payment_finishes_on_the_next_version(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    name = f"freightpay-test-{uid()}"
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="20000.00")
    instruction = customer(load, "20000.00")  # at the approval threshold: it parks

    async with running_worker(client, versioned(settings, name, "v1")):
        await make_current(client, name, "v1")
        workflow_id = await start_payment(
            client, instruction, task_queue=settings.freightpay.task_queue, policy=FAST
        )
        await wait_status(client, workflow_id, PaymentStatus.AWAITING_APPROVAL)

    workflows: list[Any] = [PaymentWorkflowNext, RemittanceWorkflow]
    async with running_worker(client, versioned(settings, name, "v2"), workflows=workflows):
        await make_current(client, name, "v2")
        handle = client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)
        await handle.execute_update("approve", ApproveInput(operator="deployer"), result_type=ActionAnswer)
        result = await asyncio.wait_for(payment_result(client, workflow_id), 60)
        described = await handle.describe()

    assert result.status is PaymentStatus.PAID
    assert result.message.endswith("(settled by version 2)")
    info = described.raw_description.workflow_execution_info.versioning_info
    assert info.deployment_version.build_id == "v2" and info.deployment_version.deployment_name == name
    assert await alvys.postings(sandbox, instruction.reference_number) == [
        ("customer", load, instruction.amount.amount)
    ]
