"""``freightpay alvys subscribe``: subscribe the ingress to Alvys's load and trip status webhooks.

It creates the subscription through Alvys's webhooks API (``POST /api/p/v1.0/webhooks``, with
the ``ALVYS_*`` credentials; the sandbox when they are unset). Alvys first sends the URL its
activation request, so the ingress must be reachable there. The answer carries the
subscription's signing secret: it must go into ``ALVYS_WEBHOOK_SECRET`` for the ingress
(comma-separated with the old one while rotating). It is shown only with ``--show-secret``;
Alvys shows it again with ``POST /api/p/v1.0/webhooks/{id}/reveal-secret``.

Exit codes: 0 subscribed; 1 refused by Alvys (the message says why, e.g. the URL failed the
activation); 3 Alvys unreachable.
"""

from __future__ import annotations

import asyncio
import hmac

import httpx
import typer

from config.alvys_webhooks import secret_list
from config.settings import get_settings
from vendors.alvys import WEBHOOK_EVENTS, AlvysProblem, WebhookSubscription

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Alvys: webhook subscriptions.")
EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3


async def _create(url: str, subsidiary: str, name: str, events: list[str]) -> WebhookSubscription:
    from worker import alvys_client  # the one way freightpay builds its Alvys client

    settings = get_settings()
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as http:
        client = alvys_client(settings, http)
        return await client.create_webhook(name=name, subsidiary_id=subsidiary, url=url, events=events)


@app.command()
def subscribe(
    url: str = typer.Option(
        ..., "--url", help="the ingress's webhook URL, e.g. https://pay.example.com/v1/webhooks/alvys"
    ),
    subsidiary: str = typer.Option(..., "--subsidiary", help="the Alvys subsidiary whose events to receive"),
    name: str = typer.Option("freightpay", "--name", help="the subscription's name in Alvys"),
    event: list[str] = typer.Option(list(WEBHOOK_EVENTS), "--event", help="event types (repeatable)"),
    show_secret: bool = typer.Option(False, "--show-secret", help="print the signing secret"),
) -> None:
    """Create the webhook subscription; print its id and where its secret must go."""
    try:
        created = asyncio.run(_create(url, subsidiary, name, event))
    except AlvysProblem as exc:
        typer.echo(f"Alvys refused the subscription: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    except httpx.TransportError as exc:
        typer.echo(f"cannot reach Alvys: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    typer.echo(
        f"subscription {created.id} ({created.status or 'created'}): {', '.join(created.events)} -> {created.url}"
    )
    secret = created.secret.get_secret_value() if created.secret else ""
    configured = secret_list(get_settings().alvys.webhook_secret)
    if secret and any(hmac.compare_digest(secret.encode(), known) for known in configured):
        typer.echo(
            "Its signing secret is already in ALVYS_WEBHOOK_SECRET: the ingress verifies its deliveries."
        )
    else:
        typer.echo(
            "Put its signing secret into ALVYS_WEBHOOK_SECRET for the ingress (comma-separated with the "
            "old one while rotating); until then its deliveries answer 401."
        )
        typer.echo(f"Alvys shows the secret again: POST /api/p/v1.0/webhooks/{created.id}/reveal-secret")
    if show_secret and secret:
        typer.echo(f"secret: {secret}")
