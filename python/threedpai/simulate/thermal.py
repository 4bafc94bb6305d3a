"""Lumped thermal models of the hotend and the bed under Klipper's heater control.

Each heater is one node of heat capacity ``C`` (J/K) heated by ``P·u`` (``u`` the PWM duty 0..1) and
losing heat to the ambient through the mount and air (``1/R``), the part fan's airflow
(``h_fan·airflow``) and, for the hotend, the filament that leaves heated (``ρ·c_p·Q``):

    C·dT/dt = P·η·u − (T − T_amb)·(1/R + h_fan·airflow + ρ·c_p·Q)

The thermistor follows the block with a first-order lag (``sensor_tau``). The control is Klipper's:
``ControlPID`` (gains in Klipper's units, divided by 255, with its anti-windup) or ``ControlBangBang``
(``max_delta``), and ``verify_heater`` (hysteresis, max_error, heating gain) plus the ADC range check
(``min_temp``/``max_temp``) shut the printer down. The loop is sequential, so it runs at a modest
control rate (10 Hz) and the sensor rows interpolate it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

PID_PARAM_BASE = 255.0
PLA_DENSITY = 1.24e-3  # g/mm^3
PLA_HEAT_CAPACITY = 1.8  # J/(g K)
OPEN_CIRCUIT_READING = -15.0  # what an open NTC thermistor reads as, degC


@dataclass(frozen=True)
class HeaterModel:
    capacity: float  # J/K
    resistance: float  # K/W, to ambient
    power: float  # W at duty 1
    sensor_tau: float  # s
    fan_loss: float  # W/K at full part-fan airflow
    control: Literal["pid", "bang"]
    kp: float = 0.0
    ki: float = 0.0
    kd: float = 0.0
    max_delta: float = 2.0
    min_temp: float = 0.0
    max_temp: float = 290.0
    hysteresis: float = 5.0
    max_error: float = 120.0
    heating_gain: float = 2.0
    check_gain_time: float = 20.0

    def varied(self, rng: np.random.Generator, spread: float = 0.08) -> HeaterModel:
        """The same heater with its physical constants scattered a little (no two printers agree)."""
        f = rng.normal(1.0, spread, 4).clip(0.8, 1.2)
        return replace(
            self,
            capacity=self.capacity * f[0],
            resistance=self.resistance * f[1],
            power=self.power * f[2],
            fan_loss=self.fan_loss * f[3],
        )


HOTEND = HeaterModel(
    capacity=11.0, resistance=16.0, power=40.0, sensor_tau=1.2, fan_loss=0.025,
    control="pid", kp=22.2, ki=1.08, kd=114.0, max_temp=290.0, check_gain_time=20.0,
)  # fmt: skip
BED = HeaterModel(
    capacity=500.0, resistance=0.55, power=200.0, sensor_tau=4.0, fan_loss=0.15,
    control="bang", max_delta=2.0, max_temp=130.0, check_gain_time=90.0,
)  # fmt: skip


@dataclass
class HeaterInputs:
    """Per control step: target, part-fan airflow 0..1, filament heat sink (W/K), heater power
    factor (a weakening cartridge < 1), stuck (MOSFET shorted: full power whatever the command),
    sensor coupling (1 = thermistor seated, less when it comes loose), reading offset (°C, wiring),
    open circuit (the thermistor wire broke)."""

    target: np.ndarray
    airflow: np.ndarray
    flow_sink: np.ndarray
    power_factor: np.ndarray
    stuck: np.ndarray
    coupling: np.ndarray
    reading_offset: np.ndarray
    open_circuit: np.ndarray

    @classmethod
    def nominal(cls, target: np.ndarray) -> HeaterInputs:
        n = len(target)
        zeros, ones = np.zeros(n), np.ones(n)
        return cls(target, zeros, zeros.copy(), ones, np.zeros(n, bool), ones.copy(), zeros.copy(), np.zeros(n, bool))


@dataclass
class HeaterTrace:
    temp: np.ndarray  # true block temperature
    sensor: np.ndarray  # the thermistor's own temperature (it lags the block)
    duty: np.ndarray  # the firmware's PWM command
    shutdown: int  # control step of the shutdown, -1 if none
    reason: str


@dataclass
class HeaterState:
    temp: float
    sensor: float


def run_heater(
    model: HeaterModel, inputs: HeaterInputs, dt: float, ambient: float, start: HeaterState
) -> tuple[HeaterTrace, HeaterState]:
    """Integrates the heater and its controller over the control steps of ``inputs``."""
    n = len(inputs.target)
    temp_out, sensor_out, duty_out = np.empty(n), np.empty(n), np.empty(n)
    target_l = inputs.target.tolist()
    # One conductance per step: mount, fan airflow and filament.
    sink_l = (1.0 / model.resistance + model.fan_loss * inputs.airflow + inputs.flow_sink).tolist()
    power_l = (model.power * inputs.power_factor).tolist()
    stuck_l = inputs.stuck.tolist()
    coupling_l = inputs.coupling.tolist()
    offset_l = inputs.reading_offset.tolist()
    open_l = inputs.open_circuit.tolist()
    kp, ki, kd = model.kp / PID_PARAM_BASE, model.ki / PID_PARAM_BASE, model.kd / PID_PARAM_BASE
    integ_max = 1.0 / ki if ki else 0.0
    lag = min(dt / model.sensor_tau, 1.0)
    check_every = max(1, round(1.0 / dt))  # verify_heater runs once a second
    temp, sensor = start.temp, start.sensor
    prev_reading, prev_deriv, prev_integ = sensor, 0.0, 0.0
    heating = False
    error, approaching, goal_temp, goal_time, last_target = 0.0, False, 0.0, 0.0, 0.0
    shutdown, reason = -1, ""
    for k in range(n):
        target = target_l[k]
        sensor += lag * (ambient + (temp - ambient) * coupling_l[k] - sensor)
        reading = OPEN_CIRCUIT_READING if open_l[k] else sensor + offset_l[k]
        if shutdown < 0 and not model.min_temp <= reading <= model.max_temp:
            shutdown, reason = k, f"ADC out of range ({reading:.1f} degC)"
        if shutdown < 0 and k % check_every == 0:
            now = k * dt
            if reading >= target - model.hysteresis or target <= 0.0:
                approaching = False
                if reading <= target + model.hysteresis:
                    error = 0.0
            else:
                error += (target - model.hysteresis) - reading
                if not approaching:
                    if target != last_target:
                        approaching, error = True, 0.0
                        goal_temp, goal_time = reading + model.heating_gain, now + model.check_gain_time
                    elif error >= model.max_error:
                        shutdown, reason = k, "heater not heating at expected rate (verify_heater)"
                elif reading >= goal_temp:
                    error = 0.0
                    goal_temp, goal_time = reading + model.heating_gain, now + model.check_gain_time
                elif now >= goal_time:
                    approaching = False
            last_target = target
        if shutdown >= 0:
            duty = 0.0
        elif model.control == "pid":
            temp_err = target - reading
            deriv = (prev_deriv * (1.0 - dt) + (reading - prev_reading)) if dt < 1.0 else (reading - prev_reading) / dt
            integ = min(max(prev_integ + temp_err * dt, 0.0), integ_max)
            co = kp * temp_err + ki * integ - kd * deriv
            duty = min(max(co, 0.0), 1.0)
            if co == duty:
                prev_integ = integ
            prev_reading, prev_deriv = reading, deriv
        else:
            if heating and reading >= target + model.max_delta:
                heating = False
            elif not heating and reading <= target - model.max_delta:
                heating = True
            duty = 1.0 if heating and target > 0 else 0.0
        applied = 1.0 if stuck_l[k] else duty
        temp += dt * (power_l[k] * applied - (temp - ambient) * sink_l[k]) / model.capacity
        temp_out[k], sensor_out[k], duty_out[k] = temp, sensor, duty
    return HeaterTrace(temp_out, sensor_out, duty_out, shutdown, reason), HeaterState(temp, sensor)


def filament_sink(volumetric_flow: np.ndarray) -> np.ndarray:
    """W/K carried away by filament entering cold and leaving at the nozzle temperature."""
    return PLA_DENSITY * PLA_HEAT_CAPACITY * np.maximum(volumetric_flow, 0.0)
