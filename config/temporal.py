"""Connecting to Temporal: the SDK's own environment configuration, the pydantic converter.

``temporalio.envconfig`` reads ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*`` and ``TEMPORAL_CONFIG_FILE``, so pointing freightpay
at a cluster or at Temporal Cloud needs no code change. Every client gets the pydantic
data converter, which carries ``Decimal`` and datetimes exactly.
"""

from __future__ import annotations

from typing import Any, NoReturn

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.envconfig import ClientConfig

from config.codec import codec_from_env, data_converter
from config.telemetry import client_interceptors

DEFAULT_ADDRESS = "localhost:7233"

#: Dynamic config for the servers freightpay starts itself (``make run``, the tests): task queues
#: of one partition. Temporal divides a queue's rate limit among its partitions, each with a
#: burst of at least one, so a 4-partition queue may dispatch 4 vendor calls at once, where
#: Alvys allows one per second. On another cluster or Temporal Cloud, give the rate-limited
#: queues (``models.queues``) one partition too.
ONE_PARTITION = (
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
)


def connect_config() -> dict[str, Any]:
    """The keyword arguments for :meth:`Client.connect`, from the environment."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if not config.get("target_host"):
        config["target_host"] = DEFAULT_ADDRESS
    # The pydantic converter; with FREIGHTPAY_CODEC_KEYS set, payloads are AES-GCM encrypted too.
    config["data_converter"] = data_converter(codec_from_env())
    config["interceptors"] = client_interceptors()
    return config


async def connect(**overrides: Any) -> Client:
    """A Temporal client configured from the environment (overrides win)."""
    config = connect_config()
    config.update(overrides)
    return await Client.connect(**config)


async def missing_search_attributes(client: Client, names: dict[str, str]) -> list[str]:
    """Which of ``names`` (name -> type) the namespace lacks, as ``Name (Type)``."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(response.custom_attributes) | set(response.system_attributes)
    return [f"{name} ({kind})" for name, kind in names.items() if name not in known]


async def register_search_attributes(client: Client, names: dict[str, str]) -> None:
    """Register the attributes a self-hosted or dev server lacks (Temporal Cloud: use tcld or the UI)."""
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    missing = [n.split(" ")[0] for n in await missing_search_attributes(client, names)]
    if not missing:
        return
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: indexed_value_type(names[name]) for name in missing},
        )
    )


def indexed_value_type(kind: str) -> IndexedValueType.ValueType:
    """The API's ``IndexedValueType`` for a type name as the CLI spells it (``KeywordList``)."""
    return {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
        "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    }[kind]


def execution_status_label(status: WorkflowExecutionStatus | None) -> str:
    """Temporal's execution status as the Web UI writes it (``Running``, ``Canceled``,
    ``Terminated``, ``TimedOut``, ``ContinuedAsNew``): one spelling for the CLI, the starter and
    the ingress, shown beside ``PaymentStatus``."""
    if status is None:
        return "Unknown"
    return status.name.title().replace("_", "")


def exit_process(code: int | str | None) -> NoReturn:
    """End a command-line process without interpreter teardown, after flushing what it wrote.

    Why: the SDK's Rust core keeps threads that may call into Python while the interpreter
    finalizes, which aborts the process ("Fatal Python error: PyGILState_Release",
    temporalio/sdk-python#300) after its work is done, turning a success into exit code -6.
    """
    import logging
    import os
    import sys

    from config.telemetry import shutdown_tracing

    status = code if isinstance(code, int) else (0 if code is None else 1)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    try:
        shutdown_tracing()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)
