"""``send_alert``: POST one operator alert to ``FREIGHTPAY_ALERT_WEBHOOK_URL``, signed per Standard Webhooks.

=========================  ==================================================================
the receiver's answer      what the activity does
=========================  ==================================================================
no URL configured          nothing is sent (a no-op, logged at DEBUG)
2xx                        done
408, 429, 5xx              retryable ``AlertUnavailable`` (BENIGN: no failure metric, DEBUG
                           log); ``Retry-After`` (seconds) sets the next retry's delay
timeouts, resets, refused  the same
3xx, other 4xx             non-retryable ``AlertRefused``, logged (a 3xx is not followed: the
                           spec asks for the URL to be updated instead)
=========================  ==================================================================

Every attempt carries the alert's own id as ``webhook-id`` (so a receiver sees one alert however
often it is retried), a fresh ``webhook-timestamp`` and, with ``FREIGHTPAY_ALERT_WEBHOOK_SECRET``
set, its ``webhook-signature`` (config/alerts.py). A Slack incoming webhook ignores the headers
and shows the body's ``text``.

The URL and the secret live in this object only (from the worker's settings): never in a
workflow input, an error message or a log line. A Slack webhook URL is itself a credential, so
httpx's own INFO line (``HTTP Request: POST <url> ...``) is given the URL's origin only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from config.alerts import check_url, parse_secret, webhook_headers
from models.alerts import Alert

#: Longest ``Retry-After`` honoured; the retry policy's own backoff takes over beyond it.
MAX_RETRY_AFTER = timedelta(hours=1)
RETRYABLE_STATUSES = frozenset({408, 429})
_SPACES = re.compile(r"\s+")


class _RedactUrl(logging.Filter):
    """Rewrites httpx's request log line so it shows only the origin of a secret URL."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls and isinstance(record.args, tuple):
            record.args = tuple(self.urls.get(str(arg), arg) for arg in record.args)
        return True


_redact = _RedactUrl()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


class AlertActivities:
    """Holds the HTTP client, the webhook URL and the signing secret; the workflows hold neither.

    ``url`` empty: alerts are off (``send_alert`` returns at once). ``secret`` None: alerts go
    unsigned (fine for Slack, which does not check). Both are validated here too, so a bad value
    stops the worker at start, with an error naming the variable and not the value. ``clock``
    (unix seconds) is for the tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str = "",
        secret: SecretStr | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._clock = clock
        self._url = check_url(url)
        self._secret = secret.get_secret_value().strip() if secret and secret.get_secret_value() else None
        if self._secret is not None:
            parse_secret(self._secret)
        if self._url:
            for form in (self._url, str(httpx.URL(self._url))):
                _redact.urls[form] = _origin(self._url)
            logging.getLogger("httpx").addFilter(_redact)  # once: addFilter ignores a repeat

    @activity.defn(name="send_alert")
    async def send_alert(self, alert: Alert) -> None:
        """POST the alert; raises for what Temporal should retry, and for a receiver's refusal."""
        if not self._url:
            activity.logger.debug("No FREIGHTPAY_ALERT_WEBHOOK_URL: alert %s not sent", alert.alert_id)
            return
        body = alert.body()
        # A new timestamp on each attempt, the same id (Standard Webhooks: the id is the event's).
        headers = webhook_headers(self._secret, alert.alert_id, int(self._clock()), body)
        headers["content-type"] = "application/json"
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"Alert receiver unreachable: {type(exc).__name__}: {self._redacted(str(exc))}",
                type="AlertUnavailable",
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            activity.logger.info("Alert %s (%s) sent", alert.alert_id, alert.event.value)
            return
        answer = f"Alert receiver answered HTTP {status}{self._snippet(response)}"
        if status >= 500 or status in RETRYABLE_STATUSES:
            raise ApplicationError(
                answer,
                type="AlertUnavailable",
                category=ApplicationErrorCategory.BENIGN,
                next_retry_delay=_retry_after(response),
            )
        activity.logger.warning("Alert %s refused: %s", alert.alert_id, answer)
        raise ApplicationError(answer, type="AlertRefused", non_retryable=True)

    def _redacted(self, text: str) -> str:
        """``text`` without the URL, its path or its query (a receiver's error page may echo them)."""
        parts = urlsplit(self._url)
        text = text.replace(self._url, _origin(self._url))
        for secretish in (parts.path if len(parts.path) > 1 else "", parts.query):
            if secretish:
                text = text.replace(secretish, "…")
        return text

    def _snippet(self, response: httpx.Response) -> str:
        try:
            text = _SPACES.sub(" ", response.text).strip()
        except Exception:  # an undecodable body says nothing useful
            return ""
        text = self._redacted(text)
        return f": {text[:200]}" if text else ""


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after", "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    return min(timedelta(seconds=int(value)), MAX_RETRY_AFTER)
