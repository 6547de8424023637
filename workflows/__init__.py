"""Workflows: each payment (and each remittance file) told as a durable story.

Workflow modules know the models and the activities' names, nothing else: no HTTP, no
clients, no clocks beyond ``workflow.now()``.
"""
