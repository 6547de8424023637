"""What every ``freightpay`` operator command shares: one Temporal connection per command, who acts.

Exit codes are the same across commands (``payments``, ``deposits``, ``reconcile``): 0 done;
1 refused (the message says why); 2 bad input; 3 Temporal unreachable; 4 no such workflow.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from temporalio.client import Client

from config.temporal import connect

EXIT_REFUSED, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 1, 2, 3, 4
err = Console(stderr=True)
_T = TypeVar("_T")


def run_with_temporal(work: Callable[[Client], Awaitable[_T]]) -> _T:
    """Connect (from the environment) and run ``work``; an unreachable Temporal is exit 3, one line."""

    async def main() -> _T:
        try:
            client = await connect()
        except RuntimeError as exc:
            err.print(f"[red]cannot reach Temporal:[/] {exc}")
            raise typer.Exit(EXIT_UNREACHABLE) from None
        return await work(client)

    return asyncio.run(main())


def who(operator: str | None) -> str:
    """The operator recorded with an action: as given, else the user name, else "operator"."""
    if operator:
        return operator
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"
