-- Per run and layer: how the print behaved while that layer was printed.
-- Inputs (views set up by threedpai.features): uniform (aligned sensors on the timeline's clock at a
-- fixed rate), layers (aligned per-layer aggregates at the full sensor rate), moves (the planned
-- timeline), labels (faults). Parameters: $band_c (temperature band, degC), $spike_sigma.
WITH dt AS (
    SELECT run_id, (max(t) - min(t)) / greatest(count(*) - 1, 1) AS dt
    FROM uniform
    GROUP BY run_id
),
u AS (
    SELECT
        u.*,
        dt.dt,
        hotend_temp - hotend_target AS he,
        bed_temp - bed_target AS be,
        -- commanded filament feed rate (mm/s) between two samples
        (e_cmd - lag(e_cmd) OVER w) / dt.dt AS flow_cmd,
        (e - lag(e) OVER w) / dt.dt AS flow_seen
    FROM uniform AS u
    JOIN dt USING (run_id)
    WHERE layer IS NOT NULL
    WINDOW w AS (PARTITION BY run_id ORDER BY t)
),
sensed AS (
    SELECT
        run_id,
        layer,
        -- @feature hotend_err_mean: mean of hotend temperature minus target while the target is set (degC)
        avg(he) FILTER (WHERE hotend_target > 0) AS hotend_err_mean,
        -- @feature hotend_err_abs_max: largest absolute hotend temperature error (degC)
        max(abs(he)) FILTER (WHERE hotend_target > 0) AS hotend_err_abs_max,
        -- @feature hotend_overshoot: largest excess of hotend temperature over target, 0 if none (degC)
        greatest(max(he) FILTER (WHERE hotend_target > 0), 0) AS hotend_overshoot,
        -- @feature hotend_out_of_band_s: time the hotend spent more than $band_c from its target (s)
        count(*) FILTER (WHERE hotend_target > 0 AND abs(he) > $band_c) * any_value(dt) AS hotend_out_of_band_s,
        -- @feature bed_err_mean: mean of bed temperature minus target while the target is set (degC)
        avg(be) FILTER (WHERE bed_target > 0) AS bed_err_mean,
        -- @feature bed_out_of_band_s: time the bed spent more than $band_c from its target (s)
        count(*) FILTER (WHERE bed_target > 0 AND abs(be) > $band_c) * any_value(dt) AS bed_out_of_band_s,
        -- @feature hotend_duty_mean: mean hotend heater duty (0-1)
        avg(hotend_duty) AS hotend_duty_mean,
        -- @feature hotend_duty_saturated: share of the layer with the hotend heater at full power (0-1)
        avg(CASE WHEN hotend_duty >= 0.98 THEN 1.0 ELSE 0.0 END) AS hotend_duty_saturated,
        -- @feature bed_duty_mean: mean bed heater duty (0-1)
        avg(bed_duty) AS bed_duty_mean,
        -- @feature fan_cmd_mean: mean part-fan command (0-1)
        avg(fan_cmd) AS fan_cmd_mean,
        -- @feature fan_rpm_per_cmd: fan speed per unit of command while the fan is on (rpm)
        avg(fan_rpm / fan_cmd) FILTER (WHERE fan_cmd > 0.1) AS fan_rpm_per_cmd,
        -- @feature load_mean: mean extruder motor load (1 = nominal)
        avg(extruder_load) AS load_mean,
        -- @feature load_per_flow: slope of extruder load against commanded feed rate (1 per mm/s)
        regr_slope(extruder_load, flow_cmd) AS load_per_flow,
        -- @feature load_spikes: samples whose load exceeds the layer mean by $spike_sigma standard deviations
        count(*) FILTER (WHERE extruder_load > load_avg + $spike_sigma * load_sd) AS load_spikes,
        -- @feature flow_ratio: filament seen by the motion sensor over filament commanded (1 = all fed)
        sum(flow_seen) FILTER (WHERE flow_cmd > 0) / nullif(sum(flow_cmd) FILTER (WHERE flow_cmd > 0), 0)
            AS flow_ratio,
        -- @feature filament_missing_s: time the runout sensor reported no filament (s)
        count(*) FILTER (WHERE filament_present = 0) * any_value(dt) AS filament_missing_s,
        -- @feature reported_layer_s: time the printer reported being on this layer (s)
        count(*) FILTER (WHERE reported_layer = layer) * any_value(dt) AS reported_layer_s
    FROM (
        SELECT
            *,
            avg(extruder_load) OVER (PARTITION BY run_id, layer) AS load_avg,
            stddev_pop(extruder_load) OVER (PARTITION BY run_id, layer) AS load_sd
        FROM u
    )
    GROUP BY run_id, layer
),
planned AS (
    SELECT
        run_id,
        layer,
        -- @feature planned_s: planned time of the layer (s)
        max(t_end) - min(t_start) AS planned_s,
        -- @feature print_speed_mean: distance-weighted mean cruise speed of printing moves (mm/s)
        sum(cruise_v * distance) FILTER (WHERE kind = 'print') / nullif(sum(distance) FILTER (WHERE kind = 'print'), 0)
            AS print_speed_mean,
        -- @feature speed_max: fastest cruise speed of any move (mm/s)
        max(cruise_v) AS speed_max,
        -- @feature travel_ratio: travel distance over all XY distance moved
        sum(distance) FILTER (WHERE kind = 'travel') / nullif(sum(distance) FILTER (WHERE kind IN ('print', 'travel')), 0)
            AS travel_ratio,
        -- @feature retractions: retraction moves in the layer
        count(*) FILTER (WHERE kind = 'retract') AS retractions,
        -- @feature features: distinct extrusion features (slicer labels) in the layer
        count(DISTINCT feature) AS features,
        -- @feature objects: distinct objects printed in the layer
        count(DISTINCT object) AS objects
    FROM moves
    WHERE layer IS NOT NULL
    GROUP BY run_id, layer
)
SELECT
    p.run_id,
    p.layer,
    p.planned_s,
    -- @feature layer_time_ratio: time the printer reported on the layer over its planned time
    s.reported_layer_s / nullif(p.planned_s, 0) AS layer_time_ratio,
    s.* EXCLUDE (run_id, layer),
    p.* EXCLUDE (run_id, layer, planned_s),
    -- @feature vib_rms: RMS of the acceleration magnitude over the layer, full sensor rate (mm/s^2)
    l.accel_rms AS vib_rms,
    -- @feature vib_peak: largest acceleration magnitude in the layer (mm/s^2)
    l.accel_peak AS vib_peak,
    -- @feature vib_band_low: share of vibration energy below 20 Hz (0-1)
    l.band_low AS vib_band_low,
    -- @feature vib_band_mid: share of vibration energy from 20 to 100 Hz (0-1)
    l.band_mid AS vib_band_mid,
    -- @feature vib_band_high: share of vibration energy above 100 Hz (0-1)
    l.band_high AS vib_band_high,
    -- @feature fault_active: the layer is at or after the onset layer of a labelled fault
    coalesce(f.fault_type IS NOT NULL, false) AS fault_active,
    -- @feature fault_type: the type of the labelled fault active on the layer, if any
    f.fault_type
FROM planned AS p
LEFT JOIN sensed AS s USING (run_id, layer)
LEFT JOIN layers AS l USING (run_id, layer)
LEFT JOIN LATERAL (
    SELECT arg_min(type, onset_layer) AS fault_type
    FROM labels
    WHERE labels.run_id = p.run_id AND labels.onset_layer <= p.layer
) AS f ON true
ORDER BY p.run_id, p.layer
