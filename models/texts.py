"""The words freightpay shows people: the Web UI's current details, reasons, activity summaries.

One module, so the texts an operator reads in the Temporal UI, the CLI and the status query
are written (and changed) in one place, apart from the rules that decide and the story that
runs. Everything here is a pure function of its arguments.
"""

from __future__ import annotations

from datetime import timedelta

from models.payment import PaymentInstruction, Target
from models.state import PaymentState
from models.steps import PostOutcome

#: What an operator may type into the UI's "Send a Signal" / "Send an Update" input.
INPUT_HINT = '(Send a Signal or Send an Update, input `{}` or e.g. `{"reason": "..."}`)'


def target_label(instruction: PaymentInstruction) -> str:
    """The vendor record a payment is for, as people say it: "Alvys load L-1001"."""
    ids = instruction.ids
    vendor = instruction.target.vendor
    if instruction.target is Target.ALVYS_CUSTOMER_PAYMENT:
        return f"{vendor} load {ids.load_number or ids.invoice_number or ids.po_number}"
    if instruction.target is Target.ALVYS_CARRIER_PAYMENT:
        return f"{vendor} trip {ids.trip_id or ids.trip_number or ids.load_number or ids.po_number}"
    return f"{vendor} invoice {ids.invoice_number}"


def static_details(instruction: PaymentInstruction) -> str:
    """What the Temporal UI shows under the summary: the payment's facts, as markdown."""
    ids = ", ".join(f"{k} `{v}`" for k, v in instruction.ids.model_dump(exclude_none=True).items())
    lines = [
        f"**{instruction.summary()}**",
        f"- Source: {instruction.source.value} (event `{instruction.source_event_id or instruction.business_key}`)",
        f"- Target: {instruction.target.value} ({ids or 'to be resolved'})",
        f"- Amount: {instruction.amount}"
        + (" (currency not given: USD assumed)" if instruction.currency_defaulted else ""),
        f"- Reference (idempotency key): `{instruction.reference_number}`",
        f"- Payment date: {instruction.payment_date:%Y-%m-%d}",
    ]
    if instruction.method or instruction.check_number:
        lines.append(f"- Method: {instruction.method or '-'} {instruction.check_number or ''}".rstrip())
    if instruction.deposit_id:
        lines.append(f"- Deposit: `{instruction.deposit_id}`")
    if instruction.note:
        lines.append(f"- Note: {instruction.note}")
    return "\n".join(lines)


def post_description(outcome: PostOutcome) -> str:
    """The vendor's answer to a recorded post, in one line."""
    parts = [f"recorded as {outcome.vendor_payment_id or 'a payment'}"]
    if outcome.total_paid is not None and outcome.total_billable is not None:
        parts.append(f"{outcome.total_paid} of {outcome.total_billable} paid")
    if outcome.target_status:
        parts.append(f"status {outcome.target_status}")
    return ", ".join(parts)


def current_details(state: PaymentState) -> str:
    """Current details for the Temporal UI (markdown): state, wait, vendor's last word, next steps."""
    lines = [f"**{state.status.value}** · {state.summary}"]
    if state.waiting_for:
        lines.append(f"- Waiting for: {state.waiting_for}")
    if state.reason:
        lines.append(f"- Why: {state.reason}")
    if state.flags:
        lines.append(f"- Flags: {', '.join(state.flags)}")
    if state.last_vendor_answer is not None:
        answer = state.last_vendor_answer
        lines.append(f"- Vendor's last answer ({answer.step}): {answer.text}")
    if state.next_actions:
        lines.append("- You can: " + ", ".join(f"`{a}`" for a in state.next_actions) + " " + INPUT_HINT)
    return "\n".join(lines)


def human(delta: timedelta) -> str:
    """A duration as people say it: "14 days", "1 hours", "2 seconds"."""
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} hours"
    if seconds >= 60:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def sentence(text: str) -> str:
    """``text`` without its closing period, so that the caller's own period is the only one."""
    return text.rstrip().rstrip(".")


# -- the payment's reasons ----------------------------------------------------------------------


def invalid(problems: list[str]) -> str:
    return sentence("; ".join(problems)) + ". Retry with corrections, or cancel."


def not_found(reason: str | None, candidates: list[str]) -> str:
    listed = f" Candidates: {', '.join(candidates)}." if candidates else ""
    return f"{sentence(reason or 'target not found')}.{listed}"


def refused_by_vendor(instruction: PaymentInstruction, problem_text: str | None) -> str:
    said = f": {sentence(problem_text)}" if problem_text else ""
    return (
        f"{instruction.target.vendor} refused the payment{said}. Retry with corrections, resolve or cancel."
    )


def unreachable(instruction: PaymentInstruction, error: str) -> str:
    return (
        f"{instruction.target.vendor} could not be reached or refused service ({sentence(error)}). "
        "Retry when it is back, or resolve."
    )


def not_confirmed(instruction: PaymentInstruction, reason: str | None) -> str:
    return (
        f"the post was answered but {instruction.target.vendor} does not show it: "
        f"{sentence(reason or 'no record of the reference')}. Check the vendor, then resolve or retry."
    )


def no_callback(instruction: PaymentInstruction, timeout: timedelta) -> str:
    return (
        f"no callback from {instruction.target.vendor} within {human(timeout)}. "
        "Check the vendor, then resolve or retry."
    )


def still_not_payable(instruction: PaymentInstruction, status: str, deadline: timedelta) -> str:
    return (
        f"{target_label(instruction)} was still {status} after {human(deadline)}. "
        "Retry once it is payable, resolve or cancel."
    )


# -- activity summaries (the Temporal UI shows them on each activity in the timeline) -----------


def resolve_summary(instruction: PaymentInstruction) -> str:
    return f"Find the {instruction.target.vendor} record for ref {instruction.reference_number}"


def post_summary(instruction: PaymentInstruction) -> str:
    return f"Post {instruction.amount} to {target_label(instruction)}, ref {instruction.reference_number}"


def payable_summary(instruction: PaymentInstruction) -> str:
    return f"Is {target_label(instruction)} payable yet?"


def read_back_summary(instruction: PaymentInstruction) -> str:
    return f"Read back ref {instruction.reference_number} from {target_label(instruction)}"
