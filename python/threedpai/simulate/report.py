"""The end-of-run summary of ``threedpai simulate``."""

from __future__ import annotations

from collections import Counter

from rich.table import Table

from threedpai.runs import FaultType
from threedpai.simulate.run import RunResult


def parse_faults(text: str) -> list[FaultType]:
    """``all``, ``none`` or a comma list of fault types (``clog_full,fan_failure``)."""
    text = text.strip().lower()
    if text == "all":
        return list(FaultType)
    if text in ("", "none"):
        return []
    out = []
    for name in text.split(","):
        try:
            out.append(FaultType(name.strip()))
        except ValueError:
            known = ", ".join(f.value for f in FaultType)
            raise ValueError(f"unknown fault {name.strip()!r}; known: {known}, or all, none") from None
    return out


def summary_table(results: list[RunResult], seconds: float) -> Table:
    table = Table(title=f"{len(results)} simulated runs", show_header=True)
    table.add_column("fault")
    table.add_column("runs", justify="right")
    table.add_column("success", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("aborted", justify="right")
    by: dict[str, Counter[str]] = {}
    for r in results:
        by.setdefault(r.fault.value if r.fault else "clean", Counter())[r.outcome] += 1
    for name in ["clean", *(f.value for f in FaultType)]:
        if name in by:
            c = by[name]
            table.add_row(name, str(c.total()), str(c["success"]), str(c["failed"]), str(c["aborted"]))
    written = sum(r.bytes_out for r in results) / 1e6
    read = sum(r.bytes_in for r in results) / 1e6
    minutes = max(seconds, 1e-9) / 60
    table.caption = (
        f"{written:,.1f} MB written, {len(results) / minutes:,.1f} runs/min, "
        f"{read / max(seconds, 1e-9):,.2f} MB/s of G-code in, {seconds:,.1f} s"
    )
    return table
