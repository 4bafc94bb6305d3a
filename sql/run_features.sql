-- Per run: the whole print, its trends over layers, and its labels.
-- Inputs: layer_features (the result of layer_features.sql), uniform, runs, labels.
-- Parameters: $band_c (temperature band, degC).
WITH settle AS (
    SELECT
        run_id,
        min(t) FILTER (WHERE hotend_target > 0) AS target_set,
        min(t) FILTER (WHERE hotend_target > 0 AND abs(hotend_temp - hotend_target) <= $band_c) AS in_band
    FROM uniform
    GROUP BY run_id
),
first_fault AS (
    SELECT
        run_id,
        arg_min(type, onset_s) AS fault_type,
        min(onset_s) AS fault_onset_s,
        arg_min(onset_layer, onset_s) AS fault_onset_layer,
        arg_min(severity, onset_s) AS fault_severity,
        count(*) AS faults
    FROM labels
    GROUP BY run_id
)
SELECT
    lf.run_id,
    -- @feature layers: layers with planned moves
    count(*) AS layers,
    -- @feature planned_total_s: planned time of all layers (s)
    sum(lf.planned_s) AS planned_total_s,
    -- @feature hotend_settle_s: from the first hotend target to the first sample within $band_c of it (s)
    any_value(s.in_band - s.target_set) AS hotend_settle_s,
    -- @feature hotend_err_abs_max_run: largest absolute hotend error over the print (degC)
    max(lf.hotend_err_abs_max) AS hotend_err_abs_max_run,
    -- @feature hotend_out_of_band_run_s: time the hotend spent outside $band_c of target while printing (s)
    sum(lf.hotend_out_of_band_s) AS hotend_out_of_band_run_s,
    -- @feature hotend_duty_run_mean: mean hotend duty over layers (0-1)
    avg(lf.hotend_duty_mean) AS hotend_duty_run_mean,
    -- @feature load_run_mean: mean extruder load over layers (1 = nominal)
    avg(lf.load_mean) AS load_run_mean,
    -- @feature load_spikes_run: load spikes over the print
    sum(lf.load_spikes) AS load_spikes_run,
    -- @feature flow_ratio_run_min: lowest per-layer ratio of filament seen to filament commanded
    min(lf.flow_ratio) AS flow_ratio_run_min,
    -- @feature filament_missing_run_s: time without filament at the runout sensor (s)
    sum(lf.filament_missing_s) AS filament_missing_run_s,
    -- @feature fan_rpm_per_cmd_min: lowest per-layer fan speed per unit of command (rpm)
    min(lf.fan_rpm_per_cmd) AS fan_rpm_per_cmd_min,
    -- @feature vib_rms_run_max: highest per-layer vibration RMS (mm/s^2)
    max(lf.vib_rms) AS vib_rms_run_max,
    -- @feature hotend_err_trend: slope of the per-layer mean hotend error over layers (degC per layer)
    regr_slope(lf.hotend_err_mean, lf.layer) AS hotend_err_trend,
    -- @feature hotend_duty_trend: slope of the per-layer mean hotend duty over layers (per layer)
    regr_slope(lf.hotend_duty_mean, lf.layer) AS hotend_duty_trend,
    -- @feature load_trend: slope of the per-layer mean extruder load over layers (per layer)
    regr_slope(lf.load_mean, lf.layer) AS load_trend,
    -- @feature flow_ratio_trend: slope of the per-layer flow ratio over layers (per layer)
    regr_slope(lf.flow_ratio, lf.layer) AS flow_ratio_trend,
    -- @feature vib_trend: slope of the per-layer vibration RMS over layers (mm/s^2 per layer)
    regr_slope(lf.vib_rms, lf.layer) AS vib_trend,
    -- @feature layer_time_ratio_max: largest ratio of reported to planned layer time
    max(lf.layer_time_ratio) AS layer_time_ratio_max,
    -- @feature travel_ratio_run: travel share of XY distance, over layers
    avg(lf.travel_ratio) AS travel_ratio_run,
    -- @feature retractions_run: retraction moves in the print
    sum(lf.retractions) AS retractions_run,
    -- @feature objects_run: most objects printed on one layer
    max(lf.objects) AS objects_run,
    -- @feature outcome: success, failed or aborted, from the run's metadata
    any_value(r.outcome) AS outcome,
    -- @feature fault_type: the first labelled fault's type, null for a clean run
    any_value(f.fault_type) AS fault_type,
    -- @feature fault_onset_s: the first fault's onset on the timeline's clock (s)
    any_value(f.fault_onset_s) AS fault_onset_s,
    -- @feature fault_onset_layer: the first fault's onset layer
    any_value(f.fault_onset_layer) AS fault_onset_layer,
    -- @feature fault_severity: the first fault's severity (0-1)
    any_value(f.fault_severity) AS fault_severity,
    -- @feature faults: labelled faults in the run
    coalesce(any_value(f.faults), 0) AS faults
FROM layer_features AS lf
LEFT JOIN settle AS s USING (run_id)
LEFT JOIN runs AS r USING (run_id)
LEFT JOIN first_fault AS f USING (run_id)
GROUP BY lf.run_id
ORDER BY lf.run_id
