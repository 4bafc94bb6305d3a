"""Clock offset and drift recovery, and audio features per interval, on synthetic streams."""

from __future__ import annotations

import numpy as np
import pytest
from threedpai import align


def flow_signal(rng: np.random.Generator, duration: float):
    """A commanded-extrusion-like signal: levels held for 0.05-3 s."""
    edges = np.cumsum(rng.uniform(0.05, 3.0, int(duration)))
    levels = rng.uniform(0, 10, len(edges) + 1)
    return lambda t: levels[np.searchsorted(edges, t)]


@pytest.mark.parametrize("offset,drift_ppm,sensor_epoch", [(2.5, 150.0, 0.0), (-7.25, -80.0, 1.7e9)])
def test_recovers_a_known_offset_and_drift(offset: float, drift_ppm: float, sensor_epoch: float) -> None:
    """30 minutes, reference at 100 Hz on the timeline, a 50 Hz sensor with 2 ms jitter and noise
    at half the signal's spread: the map is right to 2 ms over the run and the drift to 5 ppm."""
    rng = np.random.default_rng(7)
    duration, scale = 1800.0, 1 + drift_ppm * 1e-6
    signal = flow_signal(rng, duration)
    t_ref = np.arange(0, duration, 0.01)
    # the sensor's clock: t_timeline = a + scale * t_sensor, its span inside the timeline's
    a = offset - scale * sensor_epoch
    t_timeline = np.arange(10.0, duration - 10.0, 0.02)
    t_sensor = np.sort((t_timeline - a) / scale + rng.normal(0, 0.002, len(t_timeline)))
    x_obs = signal(a + scale * t_sensor) + rng.normal(0, 1.5, len(t_sensor))
    fit = align.estimate_clock(t_ref, signal(t_ref), t_sensor, x_obs)
    assert fit.drift_ppm == pytest.approx(drift_ppm, abs=5)
    assert np.max(np.abs(fit.apply(t_sensor) - (a + scale * t_sensor))) < 2e-3
    assert fit.residual_rms < 5e-3 and fit.n_windows >= 24


def test_clock_estimate_needs_a_shared_signal() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(0, 600, 0.01)
    with pytest.raises(ValueError, match="windows"):
        align.estimate_clock(t, rng.normal(size=len(t)), t, rng.normal(size=len(t)))
    with pytest.raises(ValueError, match="two samples"):
        align.estimate_clock([0.0], [1.0], t, t)


def test_audio_rms_and_band_energies_per_interval() -> None:
    rate = 48_000
    t = np.arange(rate * 4) / rate
    x = np.where(t < 2, np.sin(2 * np.pi * 1000 * t), 0.5 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32)
    starts = np.array([0.5, 1.0, 2.5, 3.0, 9.0])
    got = align.audio_features(x, rate, starts, starts + 0.25, t0=0.0, bands=[(500, 1500), (4000, 6000)])
    assert got["count"].tolist() == [12_000] * 4 + [0]
    np.testing.assert_allclose(got["rms"][:4], [0.5**0.5] * 2 + [0.125**0.5] * 2, rtol=1e-4)
    # a sine of amplitude A has mean power A²/2: energy = A²/2 * 0.25 s, all in its own band
    np.testing.assert_allclose(got["energy_500_1500"][:4], [0.125, 0.125, 0, 0], atol=1e-4)
    np.testing.assert_allclose(got["energy_4000_6000"][:4], [0, 0, 0.03125, 0.03125], atol=1e-4)
    assert np.isnan(got["rms"][4]) and got["energy_500_1500"][4] == 0
    shifted = align.audio_features(x, rate, starts + 10.0, starts + 10.25, t0=10.0)
    np.testing.assert_allclose(shifted["rms"], got["rms"], equal_nan=True)


def test_audio_chunks_do_not_change_the_sums() -> None:
    """Intervals straddling the FFT chunk boundaries add up as one long interval."""
    rate = 8000
    x = np.random.default_rng(4).normal(size=align.AUDIO_CHUNK * 2 + 1234)
    starts = np.arange(0, len(x) / rate, 7.3)
    f = align.audio_features(x, rate, starts, np.r_[starts[1:], len(x) / rate], bands=[(0, rate)])
    whole = align.audio_features(x, rate, [0.0], [len(x) / rate], bands=[(0, rate)])
    assert f["count"].sum() == len(x)
    assert f["energy_0_8000"].sum() == pytest.approx(whole["energy_0_8000"][0], rel=1e-9)
    assert np.sum(f["rms"] ** 2 * f["count"]) == pytest.approx(np.sum(x**2), rel=1e-9)


def test_audio_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        align.audio_features([0.0, np.nan], 10, [0.0], [1.0])
    with pytest.raises(ValueError, match="band"):
        align.audio_features([0.0, 1.0], 10, [0.0], [1.0], bands=[(5, 2)])
    with pytest.raises(ValueError, match="intervals"):
        align.audio_features([0.0, 1.0], 10, [0.1, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="rate"):
        align.audio_features([0.0, 1.0], 0, [0.0], [1.0])
