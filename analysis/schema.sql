-- simd results: tables. Loaded by `simd ingest`; runnable as-is in the duckdb CLI.
-- Rows of event_rows come from the workers' event logs; everything else from run.json.

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR, scenario VARCHAR, scenario_hash VARCHAR, seed BIGINT, target VARCHAR,
    clock VARCHAR, workers INTEGER, t0_epoch_ns BIGINT, duration_ns BIGINT, state VARCHAR,
    planned_publishes BIGINT, stopped_at_ns BIGINT, manifest JSON
);
CREATE TABLE IF NOT EXISTS groups (
    group_index SMALLINT, group_name VARCHAR, devices BIGINT, first_device BIGINT, rate DOUBLE
);
CREATE TABLE IF NOT EXISTS phases (
    phase_index UTINYINT, phase VARCHAR, start_ns BIGINT, end_ns BIGINT
);
CREATE TABLE IF NOT EXISTS devices (device BIGINT, device_id VARCHAR, group_index SMALLINT);
CREATE TABLE IF NOT EXISTS messages (
    group_index SMALLINT, message UTINYINT, message_name VARCHAR, topic VARCHAR, qos UTINYINT
);
CREATE TABLE IF NOT EXISTS planned (group_name VARCHAR, phase VARCHAR, publishes BIGINT);
-- one row per SLO in the scenario; `higher_is_better` flips the comparison (throughput)
CREATE TABLE IF NOT EXISTS slo (name VARCHAR, threshold DOUBLE, unit VARCHAR, higher_is_better BOOLEAN);
CREATE TABLE IF NOT EXISTS error_texts (worker INTEGER, code USMALLINT, text VARCHAR);
-- codes as the log stores them; the `events` view (views.sql) gives names
CREATE TABLE IF NOT EXISTS event_rows (
    worker USMALLINT, device INTEGER, grp SMALLINT, seq INTEGER, kind UTINYINT, status UTINYINT,
    phase UTINYINT, message UTINYINT, t_intended_ns BIGINT, t_sent_ns BIGINT, t_done_ns BIGINT,
    bytes UINTEGER, qos UTINYINT, error USMALLINT
);
-- how far each segment has been read (ingest is incremental and idempotent)
CREATE TABLE IF NOT EXISTS ingested (
    segment VARCHAR, worker INTEGER, offset_bytes BIGINT, frames BIGINT, rows BIGINT,
    torn_reason VARCHAR, torn_offset BIGINT
);
