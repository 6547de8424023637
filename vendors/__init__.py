"""Vendor HTTP clients: one module per vendor (``vendors.alvys``, later ``vendors.transportone``).

Why a package of its own: a client knows the vendor's wire (URLs, auth, bodies, error
shapes) and nothing of Temporal. It never imports ``temporalio``; activities wrap the
clients and decide what an error means for a payment (retry, wait, park for review). That
keeps the clients testable with plain HTTP and usable from scripts and the sandbox tests.

``vendors.jsonbody`` writes every vendor request body, so a ``Decimal`` amount reaches the
vendor with exactly the digits it has, never through a float.
"""
