"""``python worker.py``: one freightpay worker, configured from the environment.

Run as many as you like, on as many machines as you like, against any Temporal cluster
or Temporal Cloud (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS_*``): they share the task queue ``FREIGHTPAY_TASK_QUEUE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.alerts import AlertActivities
from activities.alvys import AlvysSteps
from activities.alvys_events import find_waiting_payments
from activities.cash import CashActivities
from activities.pacing import Pacer
from activities.payments import PaymentActivities
from activities.reconcile import ReconcileActivities
from activities.relay import RelayActivities
from activities.remittance import RemittanceActivities
from activities.transportone import TransportOneSteps
from config.relay import relay_keys
from config.settings import Settings, get_settings
from config.telemetry import TelemetrySettings, instrument_http_client, runtime_with_metrics, setup_tracing
from config.temporal import connect, exit_process, missing_search_attributes
from models.queues import queue_name
from vendors.alvys import AlvysClient
from vendors.transportone import TransportOneClient
from workflows.alvys_events import AlvysEventWorkflow
from workflows.deposit import DepositWorkflow
from workflows.payment import PaymentWorkflow
from workflows.reconcile import DiscrepancyWorkflow, ReconcileWorkflow
from workflows.remittance import RemittanceWorkflow
from workflows.search_attributes import DEFINITIONS

log = logging.getLogger("freightpay.worker")


def vendor_http_client() -> httpx.AsyncClient:
    """The one HTTP client a worker shares across its vendor calls (pooled connections)."""
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(20.0, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "freightpay/0.1"},
    )
    instrument_http_client(http)  # one span per vendor call, when tracing is on
    return http


def alvys_client(settings: Settings, http: httpx.AsyncClient) -> AlvysClient:
    alvys = settings.alvys
    return AlvysClient(
        http,
        base_url=alvys.base_url or "",
        auth_url=alvys.auth_url or "",
        client_id=alvys.client_id or "",
        client_secret=alvys.client_secret.get_secret_value() if alvys.client_secret else "",
        audience=alvys.audience,
        api_version=alvys.api_version,
    )


async def keep_alvys_token_fresh(client: AlvysClient, every_seconds: float = 30) -> None:
    """Refresh Alvys's token ahead of its expiry, so no paced payment call waits for a fetch."""
    while True:
        try:
            await client.refresh_token_ahead()
        except Exception as exc:
            log.warning("could not refresh the Alvys token ahead of time: %s", type(exc).__name__)
        await asyncio.sleep(every_seconds)


def payment_activities(
    settings: Settings, http: httpx.AsyncClient, alvys: AlvysClient | None = None, pacer: Pacer | None = None
) -> PaymentActivities:
    """The activities with their vendor clients, from the settings (secrets stay in this process)."""
    client = alvys or alvys_client(settings, http)
    t1 = settings.transportone
    transportone = TransportOneClient(
        http,
        base_url=t1.base_url or "",
        client_id=t1.client_id or "",
        client_secret=t1.client_secret.get_secret_value() if t1.client_secret else "",
        access_key=t1.access_key.get_secret_value() if t1.access_key else "",
        tenant_id=t1.tenant_id or "",
    )
    callback_url = settings.freightpay.public_url.rstrip("/") + "/v1/callbacks/transportone"
    return PaymentActivities(
        {"Alvys": AlvysSteps(client), "TransportOne": TransportOneSteps(transportone, callback_url)}, pacer
    )


#: The share of a vendor's budget actually used: 2 % clear of the published rate. The pacer
#: (activities/pacing.py) keeps an even schedule that late wake-ups do not stretch, and never
#: starts two calls on an endpoint closer than the published pace itself (Alvys: one a second),
#: so the margin only has to cover the jitter between Temporal's dispatch and the request
#: reaching the vendor; at 0.95 the measured use was 0.949, at 0.98 it is in docs/benchmarks.md.
RATE_MARGIN = 0.98


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox with every module passed through instead of re-imported for each workflow run.

    Why: the default sandbox imports the workflow modules afresh for every run and proxies what
    they import, which was the largest part of the worker's CPU per payment (60 ms against bare
    Temporal's 33, docs/benchmarks.md) and of each cached workflow's memory. Passing modules
    through keeps the sandbox's guard on workflow code itself (no ``datetime.now``, no I/O, no
    threads: they still raise), but shares the imported modules. That is safe for freightpay's
    because the modules workflows import hold no state that changes at run time (models,
    rules, texts: pure functions and constants; verified by the replay tests over recorded
    histories in tests/histories, which run with this same runner).
    """
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_all_modules())


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker Versioning from the environment: ``FREIGHTPAY_DEPLOYMENT_NAME`` + ``FREIGHTPAY_BUILD_ID``.

    Unset (the default, and ``make run``), the workers are unversioned, as before. Set, each
    worker of this process is version ``{name}.{build id}`` of the Worker Deployment; a new
    version takes new and running payments once an operator makes it current (README,
    "Deploying a new version"). Both workflow types are AUTO_UPGRADE (the reasons are beside
    each ``@workflow.defn``); it is given here as the default rather than on the definitions,
    because the SDK refuses a definition's versioning behavior on an unversioned worker.
    """
    name, build_id = settings.freightpay.deployment_name, settings.freightpay.build_id
    if not name and not build_id:
        return None
    if not (name and build_id):
        raise SystemExit("set both FREIGHTPAY_DEPLOYMENT_NAME and FREIGHTPAY_BUILD_ID, or neither")
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=name, build_id=build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
    )


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings | None = None,
    *,
    task_queue: str | None = None,
    workflows: Sequence[type] | None = None,
) -> AsyncIterator[list[Worker]]:
    """The workers of one process, running for the duration of the block.

    One worker polls the main queue (workflows, remittance files, and the vendor steps of
    vendors without a budget, run there eagerly); one per vendor queue polls that queue with
    the vendor's rate limit, which Temporal enforces across every worker.
    With ``FREIGHTPAY_DEPLOYMENT_NAME`` and ``FREIGHTPAY_BUILD_ID`` set, every one of them is a
    version of that Worker Deployment (:func:`deployment_config`). ``workflows`` replaces the
    workflow classes (a test brings up "the next version" this way).
    """
    settings = settings or get_settings()
    base = task_queue or settings.freightpay.task_queue
    deployment = deployment_config(settings)
    # Alerts get their own client, uninstrumented: a Slack webhook URL is a credential, and traces
    # would record it whole (activities/alerts.py keeps it out of logs too).
    async with (
        vendor_http_client() as http,
        httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0)) as alert_http,
    ):
        alerts = AlertActivities(
            alert_http,
            url=settings.freightpay.alert_webhook_url,
            secret=settings.freightpay.alert_webhook_secret,
        )
        alvys = alvys_client(settings, http)
        budgets = settings.vendor_budgets()
        pacer = Pacer(
            {q.value: 60 / (rpm * RATE_MARGIN) for q, rpm in budgets.items() if rpm > 0},
            min_gaps={q.value: 60 / rpm for q, rpm in budgets.items() if rpm > 0},
        )
        reconciliation = ReconcileActivities(alvys, settings.freightpay.data_dir, pacer)
        cash = CashActivities(
            alvys,
            aliases=settings.freightpay.payer_alias_map(),
            directory_seconds=settings.freightpay.customer_directory_seconds,
        )
        vendor_activities: list[Callable[..., Any]] = [
            *payment_activities(settings, http, alvys, pacer).all(),
            cash.find_loads,
            cash.find_invoice,
            cash.find_customer,
            cash.open_invoices,
            reconciliation.read_loads,
        ]
        remittance = RemittanceActivities(settings.freightpay.data_dir)
        workers = [
            Worker(
                client,
                task_queue=base,
                workflows=list(
                    workflows
                    or (
                        PaymentWorkflow,
                        RemittanceWorkflow,
                        DepositWorkflow,
                        AlvysEventWorkflow,
                        ReconcileWorkflow,
                        DiscrepancyWorkflow,
                    )
                ),
                # The vendor steps too: a step whose queue has no budget runs here, taken by the
                # worker that scheduled it at once (eager dispatch; PaymentPolicy.inline_queues).
                activities=[
                    *vendor_activities,
                    remittance.read_lines,
                    remittance.compare_with_accepted,
                    RelayActivities(relay_keys(settings)).verify_callback,
                    alerts.send_alert,
                    reconciliation.list_settled_payments,
                    reconciliation.write_report,
                    find_waiting_payments,
                ],
                workflow_runner=workflow_runner(),
                max_cached_workflows=settings.freightpay.workflow_cache,
                max_concurrent_workflow_tasks=settings.freightpay.workflow_task_slots,
                max_concurrent_activities=settings.freightpay.activity_slots,
                deployment_config=deployment,
            )
        ]
        for queue, per_minute in budgets.items():
            workers.append(
                Worker(
                    client,
                    task_queue=queue_name(base, queue),
                    activities=vendor_activities,
                    max_task_queue_activities_per_second=per_minute * RATE_MARGIN / 60
                    if per_minute > 0
                    else None,
                    max_concurrent_activities=100,
                    deployment_config=deployment,
                )
            )
        refresher = asyncio.create_task(keep_alvys_token_fresh(alvys))
        try:
            async with contextlib.AsyncExitStack() as stack:
                for worker in workers:
                    await stack.enter_async_context(worker)
                yield workers
        finally:
            refresher.cancel()


async def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    telemetry = TelemetrySettings()
    setup_tracing(telemetry, "freightpay-worker")
    client = await connect(runtime=runtime_with_metrics(telemetry))
    missing = await missing_search_attributes(client, DEFINITIONS)
    if missing:
        log.error(
            "Namespace %s lacks the search attributes %s. Register them (make run does; or "
            "`temporal operator search-attribute create --name PaymentStatus --type Keyword` ...).",
            client.namespace,
            ", ".join(missing),
        )
        return 2
    log.info("worker on task queue %s, namespace %s", settings.freightpay.task_queue, client.namespace)
    async with running_worker(client, settings):
        await asyncio.Event().wait()
    return 0


if __name__ == "__main__":
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(main())
    exit_process(code)
