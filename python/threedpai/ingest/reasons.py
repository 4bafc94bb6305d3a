"""Why a run was repaired, warned about or quarantined: small machine-readable records.

>>> Reason("sensors.non_numeric", "text in a number column", file="sensors.csv", line=17, column="hotend_temp")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# error: the run is quarantined; repair: the run was fixed (status repaired); warning: noted, status unchanged.
Severity = Literal["error", "repair", "warning"]


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    severity: Severity = "error"
    file: str | None = None
    line: int | None = None
    column: str | None = None
    field: str | None = None  # a metadata.json field path, e.g. "printer.firmware"
    details: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class RunRejected(Exception):
    """Raised inside the checks when a run cannot go on; carries every reason found so far."""

    def __init__(self, reasons: list[Reason]):
        super().__init__("; ".join(f"{r.code}: {r.message}" for r in reasons))
        self.reasons = reasons


def status_of(reasons: list[Reason]) -> str:
    if any(r.severity == "error" for r in reasons):
        return "quarantined"
    if any(r.severity == "repair" for r in reasons):
        return "repaired"
    return "ok"
