"""Recorded workflow histories of every branch, replayed by tests/test_replay.py.

Record them again (after a deliberate workflow change, guarded with ``workflow.patched``):
``.venv/bin/python -m tests.histories.record`` (starts its own dev server, sandbox and worker).
"""
