-- simd results: tables. Loaded by `simd ingest`; runnable as-is in the duckdb CLI.
-- Rows of event_rows come from the workers' event logs; everything else from run.json.

-- the layout of this file (an older one is rebuilt from the logs by `simd ingest`) and which
-- views.sql made its views (other views are re-created when the file is opened)
CREATE TABLE IF NOT EXISTS schema_info (version INTEGER, views_hash VARCHAR);

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR, scenario VARCHAR, scenario_hash VARCHAR, seed BIGINT, target VARCHAR,
    clock VARCHAR, workers INTEGER, t0_epoch_ns BIGINT, duration_ns BIGINT, state VARCHAR,
    planned_publishes BIGINT, stopped_at_ns BIGINT, manifest JSON
);
-- steps: rows per scheduled arrival (an http journey's steps; else 1)
CREATE TABLE IF NOT EXISTS groups (
    group_index SMALLINT, group_name VARCHAR, devices BIGINT, first_device BIGINT, rate DOUBLE,
    steps INTEGER
);
CREATE TABLE IF NOT EXISTS phases (
    phase_index UTINYINT, phase VARCHAR, start_ns BIGINT, end_ns BIGINT
);
CREATE TABLE IF NOT EXISTS devices (
    device BIGINT, device_id VARCHAR, group_index SMALLINT, worker INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    group_index SMALLINT, message UTINYINT, message_name VARCHAR, topic VARCHAR, qos UTINYINT
);
CREATE TABLE IF NOT EXISTS planned (group_name VARCHAR, phase VARCHAR, publishes BIGINT);
-- one row per SLO checked: the scenario's [slo] (origin 'scenario'), the default error_rate
-- when [slo] sets none (origin 'default'), and log_integrity, always (origin 'built-in');
-- `higher_is_better` flips the comparison (throughput)
CREATE TABLE IF NOT EXISTS slo (
    name VARCHAR, threshold DOUBLE, unit VARCHAR, higher_is_better BOOLEAN, origin VARCHAR
);
-- one row per shard of the run (a run that was not sharded: shard 0 of 1). A missing shard has
-- present = false and state 'missing': its devices and planned publishes are not covered.
-- Shards share t=0 by their own wall clocks: clock_* is each host's kernel NTP state at start
-- (the skew between two shards is at most the sum of their max errors); ready_wall_ns is when
-- the shard's workers were ready, before (or, late, after) t0_epoch_ns; t0_wall_ns and
-- t0_monotonic_ns are the host's wall and monotonic clocks read together when its wall clock
-- passed t=0 (to line shards up afterwards against an outside reference).
CREATE TABLE IF NOT EXISTS shards (
    shard INTEGER, shards INTEGER, present BOOLEAN, state VARCHAR,
    device_lo BIGINT, device_hi BIGINT, planned_publishes BIGINT, workers INTEGER,
    worker_base INTEGER, host VARCHAR, t0_epoch_ns BIGINT, ready_wall_ns BIGINT,
    clock_synced BOOLEAN, clock_est_error_us BIGINT, clock_max_error_us BIGINT,
    t0_wall_ns BIGINT, t0_monotonic_ns BIGINT
);
-- the scenario's probes (subscribers): their receive rows carry the probe index as `message`
CREATE TABLE IF NOT EXISTS probes (
    probe UTINYINT, name VARCHAR, topic VARCHAR, qos UTINYINT, clean BOOLEAN
);
CREATE TABLE IF NOT EXISTS error_texts (worker INTEGER, code USMALLINT, text VARCHAR);
-- One row per logged event, as codes: the `events` view (views.sql) gives names, and the
-- device's group, worker and id (from `devices`), the qos (from `messages`), the error text.
-- kind, status, phase and message are stored packed in `code` (one column instead of four
-- makes ingest 1.6x faster, docs/decisions/0002-ingest.md) and read back as virtual columns.
CREATE TABLE IF NOT EXISTS event_rows (
    device INTEGER, seq INTEGER, code UINTEGER,
    t_intended_ns BIGINT, t_sent_ns BIGINT, t_done_ns BIGINT, bytes UINTEGER, error USMALLINT,
    kind UTINYINT GENERATED ALWAYS AS ((code & 255)::UTINYINT) VIRTUAL,
    status UTINYINT GENERATED ALWAYS AS (((code >> 8) & 255)::UTINYINT) VIRTUAL,
    phase UTINYINT GENERATED ALWAYS AS (((code >> 16) & 255)::UTINYINT) VIRTUAL,
    message UTINYINT GENERATED ALWAYS AS ((code >> 24)::UTINYINT) VIRTUAL
);
-- accumulated at ingest (simd/results/histograms.py): log buckets 0.1 % wide, exact maxima, counts.
-- metric 0: latency from intended send time, 1: from actual send time, 2: schedule lag.
CREATE TABLE IF NOT EXISTS latency_hist (
    grp SMALLINT, phase UTINYINT, metric UTINYINT, bucket INTEGER, count BIGINT
);
CREATE TABLE IF NOT EXISTS latency_max (grp SMALLINT, phase UTINYINT, metric UTINYINT, max_ns BIGINT);
CREATE TABLE IF NOT EXISTS status_totals (
    grp SMALLINT, phase UTINYINT, kind UTINYINT, status UTINYINT, count BIGINT
);
-- the time axis of the series views: window width (from the run's duration, at most 720
-- windows), and the error rate above which a window counts as part of an error burst
CREATE TABLE IF NOT EXISTS analysis_settings (window_ns BIGINT, burst_error_rate DOUBLE);
-- expected publishes per window from the scenario's rate shape (the planned rate line)
CREATE TABLE IF NOT EXISTS planned_series ("window" BIGINT, planned DOUBLE);
-- Tallies per window of intended send time and per topic, added at ingest (simd/results/series.py);
-- views sum them. Buckets are coarse: 64 per power of two. Metrics as in latency_hist.
CREATE TABLE IF NOT EXISTS series_counts ("window" BIGINT, status UTINYINT, count BIGINT, bytes BIGINT);
CREATE TABLE IF NOT EXISTS series_hist ("window" BIGINT, metric UTINYINT, bucket INTEGER, count BIGINT);
CREATE TABLE IF NOT EXISTS series_max ("window" BIGINT, metric UTINYINT, max_ns BIGINT);
CREATE TABLE IF NOT EXISTS series_error_counts (
    "window" BIGINT, worker INTEGER, status UTINYINT, error USMALLINT, count BIGINT
);
-- failed rows of every kind (errors_by_kind): first/last send time 2^63-1 / -2^63 when none was sent
CREATE TABLE IF NOT EXISTS error_totals (
    worker INTEGER, kind UTINYINT, status UTINYINT, error USMALLINT, count BIGINT,
    first_ns BIGINT, last_ns BIGINT
);
CREATE TABLE IF NOT EXISTS topic_counts (
    grp SMALLINT, message UTINYINT, status UTINYINT, count BIGINT, bytes BIGINT
);
CREATE TABLE IF NOT EXISTS topic_hist (grp SMALLINT, message UTINYINT, bucket INTEGER, count BIGINT);
CREATE TABLE IF NOT EXISTS topic_max (grp SMALLINT, message UTINYINT, max_ns BIGINT);
-- each worker's own resources every [run] resource_samples: resident memory, CPU time, fds
CREATE TABLE IF NOT EXISTS samples (
    worker INTEGER, t_ns BIGINT, rss_bytes BIGINT, cpu_ns BIGINT, open_fds INTEGER
);
-- replay runs (simd/plan/replay.py): each replay group's recording and options, every recorded device
-- (source) and every recorded message, with its offset from the recording's first message.
-- `passes` is how many times through the recording the run's duration holds.
CREATE TABLE IF NOT EXISTS replay_groups (
    group_index SMALLINT, recording VARCHAR, recording_sha256 VARCHAR, recorded_from VARCHAR,
    sources BIGINT, fanout BIGINT, passes BIGINT, speed DOUBLE, lead_in_ns BIGINT,
    period_ns BIGINT, recorded_messages BIGINT,
    damaged VARCHAR  -- the recording's damaged ranges and the spans they may have held, or NULL
);
CREATE TABLE IF NOT EXISTS replay_sources (
    group_index SMALLINT, source BIGINT, device_id VARCHAR, messages BIGINT
);
CREATE TABLE IF NOT EXISTS recorded_messages (
    group_index SMALLINT, source BIGINT, rank BIGINT, offset_ns BIGINT, topic VARCHAR,
    bytes INTEGER
);
-- replay fidelity tallies, added at ingest (simd/results/fidelity.py); views sum them. Per replay
-- group: rows, sent, completed, payload size mismatches, the largest |intended - expected|; the
-- send offset (sent - expected) as a fine log histogram (buckets as latency_hist) with its exact
-- maximum; rows per second of recording time by intended (by_sent false) and by sent time.
CREATE TABLE IF NOT EXISTS replay_counts (
    group_index SMALLINT, replayed BIGINT, sent BIGINT, completed BIGINT, size_mismatches BIGINT,
    intended_error_max_ns BIGINT
);
CREATE TABLE IF NOT EXISTS replay_offset_hist (group_index SMALLINT, bucket INTEGER, count BIGINT);
CREATE TABLE IF NOT EXISTS replay_offset_max (group_index SMALLINT, max_ns BIGINT);
CREATE TABLE IF NOT EXISTS replay_bins (
    group_index SMALLINT, second BIGINT, by_sent BOOLEAN, count BIGINT
);
-- event log bytes that could not be read (simd/log/framing.py): a damaged range with valid frames
-- after it (every one of them is ingested), or a whole segment whose header is unreadable
-- (offset_start 0, reason 'unreadable: ...'). first_row and rows_lost come from the row numbers
-- of the frames around the damage (NULL: not known). A torn tail is not damage (`ingested`).
CREATE TABLE IF NOT EXISTS log_damage (
    segment VARCHAR, worker INTEGER, offset_start BIGINT, offset_end BIGINT, bytes BIGINT,
    reason VARCHAR, first_row BIGINT, rows_lost BIGINT
);
-- how far each segment has been read (ingest is incremental and idempotent)
CREATE TABLE IF NOT EXISTS ingested (
    segment VARCHAR, worker INTEGER, offset_bytes BIGINT, frames BIGINT, rows BIGINT,
    torn_reason VARCHAR, torn_offset BIGINT
);
