"""Vendor HTTP clients: one module per vendor (``vendors.alvys``, ``vendors.transportone``).

Why a package of its own: a client knows the vendor's wire (URLs, auth, bodies, error
shapes) and nothing of Temporal. It never imports ``temporalio``. It raises typed errors (a
``...Problem`` for a refusal, with the vendor's own details and ``Retry-After``; a
``...ResponseError`` for a 2xx it cannot read) and lets transport errors through unchanged.
The activities (``activities/alvys.py``, ``activities/transportone.py``, each a ``classify``
table) decide what an error means for a payment: a fact (wait, park for review) or a
retryable or non-retryable Temporal error; transport errors fail the activity attempt and are
retried by the workflow's retry policy. That keeps the clients testable with plain HTTP and
usable from scripts and the sandbox tests.

``vendors.retry_after`` reads ``Retry-After`` the same way for every vendor.

``vendors.jsonbody`` writes every vendor request body, so a ``Decimal`` amount reaches the
vendor with exactly the digits it has, never through a float.
"""
