"""A "next version" of PaymentWorkflow for the deploy test (tests/test_deploys.py).

Its own module, importing only what a workflow module may (the sandbox re-imports it), with
the one change guarded by ``workflow.patched`` as every real change must be.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.state import PaymentResult
    from models.steps import Confirmation, PaymentInput
    from workflows.payment import PaymentWorkflow


@workflow.defn(name="PaymentWorkflow")
class PaymentWorkflowNext(PaymentWorkflow):
    """The same story, with a patched change in how a payment ends."""

    @workflow.run
    async def run(self, input: PaymentInput) -> PaymentResult:
        return await super().run(input)

    def _mark_paid(self, confirmation: Confirmation) -> None:
        super()._mark_paid(confirmation)
        if workflow.patched("deploy-test-receipt"):
            self._state.reason = f"{self._state.reason} (settled by version 2)"
