"""Vendor sandbox: HTTP simulators of the vendors freightpay talks to, faithful to their documents.

The sandbox plays the vendor, not freightpay: it imports nothing from the project's other packages, so
a bug in freightpay's models can never be mirrored by the simulator and hide itself in tests. Build the
app with ``sandbox.app.create_app``; each vendor lives in its own module (``sandbox.alvys``, ...;
Alvys's parts in ``sandbox.alvys_*``).
"""
