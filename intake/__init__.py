"""Intake: a source's body → canonical payment instructions → payment workflows started.

The one path every payment enters by: the HTTP ingress and ``starter.py`` both call
:func:`intake.parse.parse_body` and :func:`intake.start.start_payments`, and hold no
payment rules of their own.
"""
