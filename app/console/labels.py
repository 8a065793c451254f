"""What the console calls the API's enum values, in the reader's language (the values
themselves stay the API's contract)."""

from __future__ import annotations

from app.core.i18n import _l

STATUS_LABELS = {
    "submitted": _l("Submitted"),
    "triaged": _l("Triaged"),
    "assigned": _l("Assigned"),
    "in_progress": _l("In progress"),
    "resolved": _l("Resolved"),
    "rejected": _l("Rejected"),
    "referred_to_police": _l("Referred to police"),
    "merged": _l("Merged"),
}
PRIORITY_LABELS = {
    "low": _l("Low"),
    "normal": _l("Normal"),
    "high": _l("High"),
    "urgent": _l("Urgent"),
}
EVENT_LABELS = {
    "submitted": _l("Submitted"),
    "transition": _l("Status changed"),
    "note": _l("Note"),
    "info_added": _l("Tipster added information"),
    "merged": _l("Merged"),
    "edited": _l("Corrected"),
    "batched": _l("Sent to the police in a batch"),
    "police_outcome": _l("Police outcome"),
}


def event_label(kind: str) -> str:
    return str(EVENT_LABELS.get(kind, kind))
