"""One simulated run folder: plan, simulate, write (atomically)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv

from threedpai import __version__, timeline
from threedpai.kinematics import Kinematics
from threedpai.runs import AUDIO, FRAMES, METADATA, MOTION, PRINTER_CFG, SENSORS, Fault, FaultType, Printer, RunMetadata
from threedpai.simulate.faults import FaultModel, plan_fault
from threedpai.simulate.media import render_frames, write_audio, write_motion
from threedpai.simulate.scenario import Scenario, build
from threedpai.simulate.sensors import add_glitches, sensor_table

PathLike = str | os.PathLike[str]
GENERATOR = f"threedpai {__version__} simulate"


@dataclass(frozen=True)
class Options:
    """What a run contains. ``rate_hz``: sensor rows per second (1 Hz to 10 kHz)."""

    rate_hz: float = 50.0
    frames: bool = True
    frame_px: int = 256
    audio: bool = False
    audio_rate_hz: int = 8000
    motion: bool = False
    motion_rate_hz: float = 10_000.0
    glitches: bool = False
    printer: str | None = None  # a Klipper printer.cfg; None: threedpai's generic printer

    def __post_init__(self) -> None:
        if not 1.0 <= self.rate_hz <= 10_000.0:
            raise ValueError(f"sensor rate must be 1 Hz to 10 kHz, not {self.rate_hz:g} Hz")
        if not 1_000 <= self.audio_rate_hz <= 96_000:
            raise ValueError(f"audio rate must be 1 to 96 kHz, not {self.audio_rate_hz} Hz")
        if not 10.0 <= self.motion_rate_hz <= 1_000_000.0:
            raise ValueError(f"motion rate must be 10 Hz to 1 MHz, not {self.motion_rate_hz:g} Hz")
        if not 16 <= self.frame_px <= 4096:
            raise ValueError(f"frame size must be 16 to 4096 pixels, not {self.frame_px}")


@dataclass
class RunResult:
    path: Path
    fault: FaultType | None
    outcome: str
    bytes_in: int
    bytes_out: int
    seconds: float
    timeline_seconds: float  # parsing and planning in the Rust core
    thermal_seconds: float  # the heater control loops


def _streams(seed: np.random.SeedSequence, count: int) -> list[np.random.Generator]:
    """Independent generators per concern (fault, world, sensors, frames, audio), so switching
    frames or audio on does not change the sensor data. Derived, not spawned: the same seed always
    gives the same streams."""
    return [
        np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, k)))
        for k in range(count)
    ]


def _material(hotend: float) -> str:
    return "PLA" if hotend < 228 else ("PETG" if hotend < 245 else "ABS")


def _printer(text: str, path: str | None) -> Printer:
    kinematics = "cartesian"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "kinematics" and value.strip():
            kinematics = value.strip()
            break
    name = Path(path).stem if path else "threedpai-generic"
    return Printer(name=name, firmware="klipper", kinematics=kinematics)


def _label(sc: Scenario, fault: FaultModel) -> list[Fault]:
    if fault.type is None:
        return []
    onset_layer = int(sc.motion(np.array([fault.onset])).layer[0])
    details = dict(fault.details)
    end_s = None
    if sc.shutdown_s < np.inf:
        details["shutdown"] = sc.shutdown_reason
        end_s = round(max(sc.shutdown_s, fault.onset), 3)
    return [
        Fault(
            type=fault.type,
            onset_s=round(fault.onset, 3),
            onset_layer=onset_layer,
            severity=fault.severity,
            end_s=end_s,
            details=details,
        )
    ]


def simulate_run(
    source: PathLike,
    out_dir: PathLike,
    *,
    run_id: str = "run-00000",
    fault: FaultType | None = None,
    seed: int | np.random.SeedSequence = 0,
    options: Options | None = None,
    severity: float | None = None,
) -> RunResult:
    """Simulates printing ``source`` (a .gcode or .bgcode file) with ``fault`` (None: a clean run;
    ``severity`` 0..1, default drawn at random) and writes the run folder ``out_dir/run_id``
    (written in a temporary folder, then renamed)."""
    started = time.perf_counter()
    opts = options or Options()
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng_fault, rng_world, rng_sensors, rng_frames, rng_audio, rng_glitch = _streams(ss, 6)
    source = Path(source)
    target = Path(out_dir) / run_id
    if target.exists():
        raise FileExistsError(f"{target} exists")
    printer_text = timeline._printer_text(opts.printer)  # a .toml printer becomes the cfg it stands for
    t0 = time.perf_counter()
    tl = timeline.read(source, opts.printer)
    timeline_s = time.perf_counter() - t0
    kin = Kinematics(tl)
    fault_model = plan_fault(fault, kin, rng_fault, severity)
    t0 = time.perf_counter()
    sc = build(str(source), tl, kin, fault_model, rng_world)
    thermal_s = time.perf_counter() - t0
    table = sensor_table(sc, opts.rate_hz, rng_sensors)
    notes: dict[str, object] = {
        "source_gcode": source.name,
        "preheat_s": sc.preheat_s,
        "data_end_s": round(sc.data_end, 3),
        "ambient_c": sc.ambient,
        "fan_max_rpm": sc.fan_max_rpm,
        "resonances_hz": [f for f, _ in sc.resonances],
    }
    if opts.glitches:
        table, notes["glitches"] = add_glitches(table, opts.rate_hz, rng_glitch)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", suffix=".tmp", dir=out_dir))
    try:
        gcode_name = "print.bgcode" if source.suffix.lower() == ".bgcode" else "print.gcode"
        shutil.copyfile(source, tmp / gcode_name)
        (tmp / PRINTER_CFG).write_text(printer_text)
        pcsv.write_csv(table, tmp / SENSORS)
        if opts.frames:
            notes["frames"] = render_frames(sc, tmp / FRAMES, opts.frame_px, rng_frames)
        audio_start = 0.0
        if opts.audio:
            audio_start = write_audio(sc, tmp / AUDIO, opts.audio_rate_hz, rng_audio)
            notes["audio_rate_hz"] = opts.audio_rate_hz
        if opts.motion:
            write_motion(sc, tmp / MOTION, opts.motion_rate_hz)
        layers = np.unique(sc.motion(np.array([sc.data_end])).layer)
        meta = RunMetadata(
            run_id=run_id,
            source="simulated",
            started_at=datetime(2024, 1, 1, tzinfo=UTC)
            + timedelta(seconds=int(rng_world.integers(0, 2 * 365 * 86400))),
            printer=_printer(printer_text, opts.printer),
            material=_material(float(sc.hotend_target.initial)),
            gcode=gcode_name,
            layer_count=int(layers[0]) + 1 if sc.kin.moves else 0,
            planned_time_s=round(sc.kin.total, 3),
            outcome=fault_model.outcome(sc.shutdown_s < np.inf),  # type: ignore[arg-type]
            faults=_label(sc, fault_model),
            sensor_rate_hz=opts.rate_hz,
            sensor_clock=sc.clock.label(),
            motion_rate_hz=opts.motion_rate_hz if opts.motion else None,
            audio_start_s=audio_start,
            seed=int(ss.entropy) if isinstance(ss.entropy, int) else None,
            generator=GENERATOR,
            notes=notes | {"spawn_key": list(ss.spawn_key)},
        )
        (tmp / METADATA).write_text(meta.model_dump_json(indent=2) + "\n")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return RunResult(
        target, fault, meta.outcome, source.stat().st_size, size, time.perf_counter() - started, timeline_s, thermal_s
    )
