"""Simulated printer runs: labelled run folders (docs/runs.md) generated from G-code.

>>> results = simulate(["print.gcode"], n=20, out="archive", seed=1)   # run-00000 ... run-00019
>>> one = simulate_run("print.gcode", "archive", run_id="clog", fault=FaultType.CLOG_FULL, seed=7)

The physical models, fault signatures and clock model are described in docs/simulate.md.
"""

from threedpai.runs import FaultType
from threedpai.simulate.archive import fault_schedule, find_sources, simulate
from threedpai.simulate.run import Options, RunResult, simulate_run
from threedpai.simulate.sample import sample_gcode

__all__ = [
    "FaultType",
    "Options",
    "RunResult",
    "fault_schedule",
    "find_sources",
    "sample_gcode",
    "simulate",
    "simulate_run",
]
