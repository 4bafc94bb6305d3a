"""The run folder: one print's data on disk, shared by ``simulate`` (which writes it) and ``ingest``
(which checks it). The format is described in docs/runs.md; this module is its single definition.

>>> meta = RunMetadata.model_validate_json(Path("run/metadata.json").read_text())
>>> table = pyarrow.csv.read_csv("run/sensors.csv", convert_options=sensor_convert_options())
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION: Literal[1] = 1

# Required and optional members of a run folder.
GCODE_NAMES = ("print.gcode", "print.bgcode", "print.gcode.gz")
SENSORS = "sensors.csv"
METADATA = "metadata.json"
MOTION = "motion.csv"  # Prunt simulator stream: `DATA OUTPUT,x,y,z,e`, one line per step at motion_rate_hz
FRAMES = "frames"  # frames/<t_ms, 9 digits>.png|jpg: t on the sensor clock in milliseconds
AUDIO = "audio.wav"  # PCM WAV, its first sample at metadata.audio_start_s on the sensor clock
PRINTER_CFG = "printer.cfg"  # the Klipper config the run was printed (or simulated) with
KLIPPER_LOG_SUFFIXES = (".json.gz", ".index.gz")  # Klipper's motion-analysis data logger


class FaultType(StrEnum):
    """Fault labels. Each has a physical signature in the sensors (docs/runs.md)."""

    CLOG_PARTIAL = "clog_partial"
    CLOG_FULL = "clog_full"
    THERMAL_RUNAWAY = "thermal_runaway"
    THERMISTOR_FAULT = "thermistor_fault"
    HEATER_WEAK = "heater_weak"
    LAYER_SHIFT = "layer_shift"
    FILAMENT_RUNOUT = "filament_runout"
    ADHESION_LOSS = "adhesion_loss"
    FAN_FAILURE = "fan_failure"
    OVER_EXTRUSION = "over_extrusion"
    UNDER_EXTRUSION = "under_extrusion"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_Strict):
    """One labelled fault: what, when (on the timeline's clock and as a layer), how bad."""

    type: FaultType
    onset_s: float = Field(ge=0, description="seconds from print start, timeline clock")
    onset_layer: int = Field(ge=0)
    severity: float = Field(ge=0, le=1, description="0 = barely visible, 1 = as bad as it gets")
    end_s: float | None = Field(default=None, ge=0, description="when it stopped, if it did")
    details: dict[str, float | str] = Field(default_factory=dict, description="e.g. shift axis and mm")

    @model_validator(mode="after")
    def _ends_after_onset(self) -> Fault:
        if self.end_s is not None and self.end_s < self.onset_s:
            raise ValueError(f"end_s {self.end_s} is before onset_s {self.onset_s}")
        return self


class SensorClock(_Strict):
    """How the sensor clock relates to the timeline: t_sensor = offset_s + (1 + drift_ppm·1e-6)·t_timeline.
    Known for simulated runs (ground truth); estimated by the alignment for real ones."""

    offset_s: float
    drift_ppm: float = Field(ge=-1e4, le=1e4)


class Printer(_Strict):
    name: str = Field(min_length=1)
    firmware: Literal["klipper", "marlin", "prunt", "reprapfirmware", "other"]
    kinematics: str = "cartesian"


class RunMetadata(_Strict):
    """``metadata.json`` of a run folder."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    source: Literal["simulated", "real"]
    started_at: AwareDatetime
    printer: Printer
    material: str | None = None
    gcode: str = Field(default="print.gcode", description="the G-code member's file name")
    layer_count: int = Field(ge=0)
    planned_time_s: float | None = Field(default=None, ge=0)
    outcome: Literal["success", "failed", "aborted"]
    faults: list[Fault] = Field(default_factory=list)
    sensor_rate_hz: float = Field(gt=0, le=100_000)
    sensor_clock: SensorClock | None = None
    motion_rate_hz: float | None = Field(default=None, gt=0, le=1_000_000)
    audio_start_s: float = 0.0
    seed: int | None = None
    generator: str | None = Field(default=None, description="what wrote the run, e.g. 'threedpai 0.1.0 simulate'")
    notes: dict[str, Any] = Field(default_factory=dict, description="anything else, kept as is")

    @model_validator(mode="after")
    def _consistent(self) -> RunMetadata:
        if self.gcode not in GCODE_NAMES:
            raise ValueError(f"gcode must be one of {', '.join(GCODE_NAMES)}, not {self.gcode!r}")
        if self.outcome == "success" and any(f.type is FaultType.CLOG_FULL for f in self.faults):
            raise ValueError("a run with a full clog cannot have outcome 'success'")
        return self


# sensors.csv: one row per sample, all channels on one clock. `t` and the four temperatures are
# required; every other column is optional, but when present it must have this type. Columns not
# listed here are kept as float64 (a real printer may log more).
SENSOR_SCHEMA = pa.schema(
    [
        pa.field("t", pa.float64(), nullable=False, metadata={"unit": "s", "doc": "sensor clock"}),
        pa.field("hotend_temp", pa.float64(), metadata={"unit": "degC"}),
        pa.field("hotend_target", pa.float64(), metadata={"unit": "degC"}),
        pa.field("bed_temp", pa.float64(), metadata={"unit": "degC"}),
        pa.field("bed_target", pa.float64(), metadata={"unit": "degC"}),
        pa.field("hotend_duty", pa.float64(), metadata={"unit": "1", "doc": "heater PWM 0..1"}),
        pa.field("bed_duty", pa.float64(), metadata={"unit": "1"}),
        pa.field("fan_cmd", pa.float64(), metadata={"unit": "1", "doc": "part fan command 0..1"}),
        pa.field("fan_rpm", pa.float64(), metadata={"unit": "rpm", "doc": "part fan tachometer"}),
        pa.field("extruder_load", pa.float64(), metadata={"unit": "1", "doc": "motor load, 1 = nominal"}),
        pa.field("accel_x", pa.float64(), metadata={"unit": "mm/s^2"}),
        pa.field("accel_y", pa.float64(), metadata={"unit": "mm/s^2"}),
        pa.field("accel_z", pa.float64(), metadata={"unit": "mm/s^2"}),
        pa.field("x", pa.float64(), metadata={"unit": "mm", "doc": "toolhead position as reported"}),
        pa.field("y", pa.float64(), metadata={"unit": "mm"}),
        pa.field("z", pa.float64(), metadata={"unit": "mm"}),
        pa.field("e", pa.float64(), metadata={"unit": "mm", "doc": "filament fed, from a motion sensor"}),
        pa.field("filament_present", pa.int8(), metadata={"unit": "1", "doc": "runout sensor 0/1"}),
        pa.field("layer", pa.int32(), metadata={"doc": "layer the printer reports, 0-based"}),
    ]
)
SENSOR_REQUIRED = ("t", "hotend_temp", "hotend_target", "bed_temp", "bed_target")

# Plausible ranges: a value outside is a unit or sensor error, reported by the consistency checks.
SENSOR_RANGES: dict[str, tuple[float, float]] = {
    "hotend_temp": (-40.0, 500.0),
    "hotend_target": (0.0, 500.0),
    "bed_temp": (-40.0, 200.0),
    "bed_target": (0.0, 200.0),
    "hotend_duty": (0.0, 1.0),
    "bed_duty": (0.0, 1.0),
    "fan_cmd": (0.0, 1.0),
    "fan_rpm": (0.0, 50_000.0),
    "extruder_load": (0.0, 10.0),
    "accel_x": (-500_000.0, 500_000.0),
    "accel_y": (-500_000.0, 500_000.0),
    "accel_z": (-500_000.0, 500_000.0),
    "filament_present": (0.0, 1.0),
}


def sensor_convert_options() -> pyarrow.csv.ConvertOptions:
    """Typed CSV reading: listed columns get their type, a stray word in a number column is an error."""
    return pyarrow.csv.ConvertOptions(
        column_types={f.name: f.type for f in SENSOR_SCHEMA},
        strings_can_be_null=False,
        null_values=[""],
    )


def scenario(fault_types: list[str], outcome: str) -> str:
    """A run's scenario, the dataset's partition above ``run_id``: its first labelled fault type;
    ``clean`` for an unlabelled run that succeeded, ``unlabelled`` for one that did not."""
    if fault_types:
        return fault_types[0]
    return "clean" if outcome == "success" else "unlabelled"
