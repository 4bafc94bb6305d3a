"""The optional members of a run folder: per-layer frames, audio of the steppers, and a Prunt-style
motion stream."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
from PIL import Image, ImageDraw

from threedpai.runs import FaultType
from threedpai.simulate.scenario import Scenario

MATERIAL_RGB = np.array([232.0, 118.0, 38.0])
BED_RGB = (38, 40, 46)
FULL_STEPS_PER_MM = np.array([5.0, 5.0, 25.0, 18.0])  # 200 steps/rev: 40 mm belts, 8 mm lead screw, geared extruder
CHUNK = 1 << 18


def render_frames(sc: Scenario, folder: Path, px: int, rng: np.random.Generator) -> int:
    """One top view per layer, taken as the layer ends, of everything extruded so far; the fault
    shows: shifted or drifting layers, thin or missing lines, blobs, discoloured plastic."""
    kin, fault = sc.kin, sc.fault
    xy = kin.delta[:, :2]
    printing = (kin.kind == "print") & (kin.delta[:, 3] > 0) & (np.abs(xy).sum(axis=1) > 0)
    segs = np.flatnonzero(printing & (kin.t_start < sc.motion_end))
    layers, ends = kin.layer_ends()
    stop = min(sc.data_end, sc.motion_end)
    keep = ends <= stop
    times = list(ends[keep])
    if len(ends) and not keep.all() and (not times or times[-1] < stop):
        times.append(stop)  # the print stopped inside a layer: one last look
    if len(segs) == 0 or not times:
        return 0
    folder.mkdir()
    # The part, not the prime line or a purge: the bulk of the extrusion endpoints.
    ends_xy = np.concatenate([kin.start[segs, :2], (kin.start + kin.delta)[segs, :2]])
    lo = np.percentile(ends_xy, 0.5, axis=0) - 6.0
    hi = np.percentile(ends_xy, 99.5, axis=0) + 6.0
    scale = (px - 1) / float(max(hi - lo))
    centre = (lo + hi) / 2
    z_top = max(float((kin.start + kin.delta)[segs, 2].max()), 1e-3)
    mid = kin.t_start[segs] + 0.5 * (kin.t_end[segs] - kin.t_start[segs])
    flow = fault.flow(mid)
    restriction = fault.restriction(mid)
    overheat = np.interp(mid, sc.control_t, sc.hotend.temp) - sc.target(sc.hotend_target, mid)
    loose = fault.type is FaultType.ADHESION_LOSS
    lift = float(fault.details.get("lift_mm", 0.0))
    img = Image.new("RGB", (px, px), BED_RGB)
    draw = ImageDraw.Draw(img)
    drawn = 0
    for frame_t in times:
        upto = int(np.searchsorted(kin.t_start[segs], frame_t, side="left"))
        for j in range(drawn, upto):
            m = segs[j]
            if flow[j] < 0.05 or rng.random() < 0.6 * restriction[j] * (fault.type is FaultType.CLOG_PARTIAL):
                continue
            dx, dy, rot = fault.frame_offset(float(kin.t_start[m]), int(kin.layer[m]))
            p = np.stack([kin.start[m, :2], kin.start[m, :2] + xy[m]]) - centre
            c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
            p = p @ np.array([[c, s], [-s, c]]) + centre + [dx, dy]
            if loose and kin.t_start[m] >= fault.onset:  # the nozzle drags a loose part: spaghetti
                p = p + rng.normal(0, lift, (2, 2))
            pix = (p - lo) * scale
            pix[:, 1] = px - 1 - pix[:, 1]
            shade = 0.5 + 0.5 * float(kin.start[m, 2] + kin.delta[m, 2]) / z_top
            # Thin (under-extruded) lines look translucent, overheated plastic browns.
            rgb = MATERIAL_RGB * shade * (0.6 + 0.4 * min(flow[j], 1.0) ** 2)
            rgb *= 1.0 - min(max(overheat[j] - 10.0, 0.0) / 80.0, 0.6)
            color = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
            width = max(1, round(0.45 * scale * flow[j]))
            draw.line([tuple(pix[0]), tuple(pix[1])], fill=color, width=width)
            blobs = 0.05 if fault.type is FaultType.FAN_FAILURE and kin.t_start[m] >= fault.onset else 0.0
            if rng.random() < blobs + max(flow[j] - 1.0, 0.0) * 0.3:
                # Soft plastic sags into blobs without cooling; surplus plastic piles up.
                r = 0.4 * scale * (1 + fault.severity)
                draw.ellipse([pix[1, 0] - r, pix[1, 1] - r, pix[1, 0] + r, pix[1, 1] + r], fill=color)
        drawn = max(drawn, upto)
        name = f"{round(float(sc.clock.to_sensor(frame_t)) * 1000):09d}.png"
        img.save(folder / name, optimize=False)
    return len(times)


def write_audio(sc: Scenario, path: Path, rate: int, rng: np.random.Generator) -> float:
    """Mono 16-bit PCM from print start to the end of the data: one tone per stepper at its full-step
    frequency (speed × full steps per mm), fan hum, grinding clicks and knocks. Returns the sensor-clock
    time of the first sample."""
    start = float(sc.clock.to_sensor(0.0))
    n = int((float(sc.clock.to_sensor(sc.data_end)) - start) * rate)
    phase = np.zeros(5)
    grind = float(sc.fault.details.get("grind_hz", 0.0))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for lo in range(0, n, CHUNK):
            s = start + np.arange(lo, min(lo + CHUNK, n)) / rate
            t = sc.clock.to_timeline(s)
            speed = np.abs(sc.motion(t).vel)
            freq = np.column_stack([speed * FULL_STEPS_PER_MM, 7.0 * sc.fan_max_rpm * sc.fan_speed(t) / 60.0])
            ph = phase + np.cumsum(2 * np.pi * freq / rate, axis=0)
            phase = ph[-1] % (2 * np.pi)
            amp = 0.07 * np.tanh(speed / 10.0)
            signal = (amp * (np.sin(ph[:, :4]) + 0.35 * np.sin(2 * ph[:, :4]))).sum(axis=1)
            fan = sc.fan_speed(t)
            signal += fan * (0.02 * np.sin(ph[:, 4]) + rng.normal(0, 0.015, len(t))) + rng.normal(0, 0.003, len(t))
            if grind:
                grinding = (sc.fault.restriction(t) >= 1.0) & (speed[:, 3] > 0.05)
                click = np.exp(-((t * grind) % 1.0) * 60.0) * rng.normal(0, 0.5, len(t))
                signal += np.where(grinding, click, 0.0)
            for when, *amp3 in sc.fault.knocks:
                tau = t - when
                hit = (tau >= 0) & (tau < 0.08)
                size = min(np.linalg.norm(amp3) / 40_000.0, 0.8)
                signal[hit] += size * np.exp(-tau[hit] / 0.015) * np.sin(2 * np.pi * 900 * tau[hit])
            out.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return round(start, 6)


def write_motion(sc: Scenario, path: Path, rate: float) -> None:
    """``DATA OUTPUT,x,y,z,e`` per step at ``rate`` on the timeline clock (Prunt's simulator stream)."""
    n = int(sc.data_end * rate) + 1
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    schema = pa.schema([("tag", pa.string()), *[(a, pa.float64()) for a in "xyze"]])
    with pcsv.CSVWriter(str(path), schema, write_options=options) as writer:
        for lo in range(0, n, CHUNK):
            t = np.arange(lo, min(lo + CHUNK, n)) / rate
            pos = np.round(sc.motion(t).pos, 4) + 0.0
            cols = [pa.repeat("DATA OUTPUT", len(t)), *[pa.array(pos[:, k]) for k in range(4)]]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))
