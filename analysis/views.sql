-- simd results: views. Every report, check and query is a SELECT over these.
-- Times are virtual ns since the run's t=0. Latency "from intended" counts the time a publish
-- waited to be sent (coordinated omission shows); "from sent" is the target's own share.

-- the codes a row's kind and status are stored as, by name (simd.log.events holds the same
-- lists; tests/test_analysis_docs.py checks they agree). With a constant name the macros
-- fold to the number at planning, so filters on them cost what a bare number costs.
CREATE OR REPLACE MACRO kind_list() AS
    ['publish', 'connect', 'disconnect', 'receive', 'error', 'command', 'reply'];
CREATE OR REPLACE MACRO status_list() AS
    ['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'];
CREATE OR REPLACE MACRO kind_code(name) AS list_position(kind_list(), name) - 1;
CREATE OR REPLACE MACRO status_code(name) AS list_position(status_list(), name) - 1;
-- the status classes: completed (acked, sent), failed (the rest of a publish's), sent (all
-- but those never sent: missed, unsent)
CREATE OR REPLACE MACRO is_completed(s) AS s IN (status_code('acked'), status_code('sent'));
CREATE OR REPLACE MACRO is_failed(s) AS s IN (status_code('timeout'), status_code('error'),
    status_code('dropped'), status_code('missed'), status_code('unsent'));
CREATE OR REPLACE MACRO was_sent(s) AS s NOT IN (status_code('missed'), status_code('unsent'));
CREATE OR REPLACE VIEW kind_names AS
SELECT (i - 1)::INTEGER AS code, kind_list()[i] AS name FROM range(1, len(kind_list()) + 1) t(i);
CREATE OR REPLACE VIEW status_names AS
SELECT (i - 1)::INTEGER AS code, status_list()[i] AS name
FROM range(1, len(status_list()) + 1) t(i);

-- one row per logged event, with names (the contract of the README, Results)
CREATE OR REPLACE VIEW events AS
SELECT
    d.worker,
    CASE WHEN r.device < 0 THEN NULL ELSE r.device END::BIGINT AS device,
    d.device_id,
    g.group_name,
    p.phase,
    CASE WHEN r.seq < 0 THEN NULL ELSE r.seq END::BIGINT AS seq,
    (['publish', 'connect', 'disconnect', 'receive', 'error', 'command', 'reply'])[r.kind + 1] AS kind,
    (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[r.status + 1] AS status,
    CASE WHEN r.kind = kind_code('publish') THEN m.message_name END AS message,
    r.t_intended_ns, r.t_sent_ns, r.t_done_ns,
    r.bytes::INTEGER AS bytes,
    CASE WHEN r.kind = kind_code('publish') THEN m.qos END::TINYINT AS qos,
    e.text AS error
FROM event_rows r
LEFT JOIN devices d ON d.device = r.device
LEFT JOIN groups g ON g.group_index = d.group_index
LEFT JOIN phases p ON p.phase_index = r.phase
LEFT JOIN messages m ON m.group_index = d.group_index AND m.message = r.message
LEFT JOIN error_texts e ON e.worker = d.worker AND e.code = r.error AND r.error > 0;

-- per second of intended time: scheduled, sent, completed, failed, bytes (exact, from event_rows)
CREATE OR REPLACE VIEW timeline AS
SELECT
    (t_intended_ns // 1000000000)::BIGINT AS second,
    count(*) AS scheduled,
    count(*) FILTER (WHERE was_sent(status)) AS sent,
    count(*) FILTER (WHERE is_completed(status)) AS completed,
    count(*) FILTER (WHERE status = status_code('acked')) AS acked,
    count(*) FILTER (WHERE is_failed(status)) AS failed,
    sum(bytes)::BIGINT AS bytes,
    quantile_cont(t_done_ns - t_intended_ns, 0.99) FILTER (WHERE is_completed(status)) AS latency_p99_ns,
    max(t_sent_ns - t_intended_ns) FILTER (WHERE was_sent(status)) AS lag_max_ns
FROM event_rows
WHERE kind = kind_code('publish')
GROUP BY ALL
ORDER BY second;

-- histograms summed over ingests, per (group, phase) and for the whole run (grp, phase NULL)
CREATE OR REPLACE VIEW hist_cumulative AS
WITH h AS (
    SELECT grp, phase, metric, bucket, sum(count) AS n
    FROM latency_hist
    GROUP BY GROUPING SETS ((grp, phase, metric, bucket), (metric, bucket))
)
SELECT *,
       sum(n) OVER (PARTITION BY grp, phase, metric ORDER BY bucket
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
       sum(n) OVER (PARTITION BY grp, phase, metric) AS total
FROM h;

-- a bucket's midpoint: 2^e * (1 + (m + 0.5) / 1024) with e, m = divmod(bucket - 1, 1024)
CREATE OR REPLACE MACRO bucket_mid(b) AS
    CASE WHEN b = 0 THEN 0.0
         ELSE pow(2, (b - 1) // 1024) * (1 + (((b - 1) % 1024) + 0.5) / 1024) END;

-- nearest-rank percentiles read from the histograms (within 0.05 %), exact maxima
CREATE OR REPLACE VIEW hist_quantiles AS
WITH q AS (
    SELECT grp, phase, metric, any_value(total) AS n,
           min(bucket) FILTER (WHERE cum >= ceil(0.5 * total)) AS b50,
           min(bucket) FILTER (WHERE cum >= ceil(0.9 * total)) AS b90,
           min(bucket) FILTER (WHERE cum >= ceil(0.99 * total)) AS b99,
           min(bucket) FILTER (WHERE cum >= ceil(0.999 * total)) AS b999
    FROM hist_cumulative
    GROUP BY grp, phase, metric
),
mx AS (
    SELECT grp, phase, metric, max(max_ns) AS max_ns
    FROM latency_max GROUP BY GROUPING SETS ((grp, phase, metric), (metric))
)
SELECT q.grp, q.phase, q.metric, q.n,
       least(bucket_mid(b50), mx.max_ns) AS p50_ns,
       least(bucket_mid(b90), mx.max_ns) AS p90_ns,
       least(bucket_mid(b99), mx.max_ns) AS p99_ns,
       least(bucket_mid(b999), mx.max_ns) AS p999_ns,
       mx.max_ns
FROM q
JOIN mx ON mx.metric = q.metric AND mx.grp IS NOT DISTINCT FROM q.grp
       AND mx.phase IS NOT DISTINCT FROM q.phase;

-- latency percentiles per group and phase (and the whole run as group '*', phase '*')
CREATE OR REPLACE VIEW latency_percentiles AS
SELECT
    coalesce(g.group_name, '*') AS group_name,
    coalesce(p.phase, '*') AS phase,
    i.n AS completed,
    i.p50_ns AS p50_intended_ns, i.p90_ns AS p90_intended_ns, i.p99_ns AS p99_intended_ns,
    i.p999_ns AS p999_intended_ns, i.max_ns AS max_intended_ns,
    s.p50_ns AS p50_sent_ns, s.p90_ns AS p90_sent_ns, s.p99_ns AS p99_sent_ns,
    s.p999_ns AS p999_sent_ns, s.max_ns AS max_sent_ns
FROM hist_quantiles i
JOIN hist_quantiles s ON s.metric = 1 AND s.grp IS NOT DISTINCT FROM i.grp
                     AND s.phase IS NOT DISTINCT FROM i.phase
LEFT JOIN groups g ON g.group_index = i.grp
LEFT JOIN phases p ON p.phase_index = i.phase
WHERE i.metric = 0
ORDER BY (i.grp IS NULL), i.grp, i.phase;

-- how late publishes left the generator, per group and phase (and '*' for the run)
CREATE OR REPLACE VIEW schedule_lag AS
SELECT coalesce(g.group_name, '*') AS group_name, coalesce(p.phase, '*') AS phase,
       l.n AS sent, l.p50_ns AS lag_p50_ns, l.p99_ns AS lag_p99_ns, l.max_ns AS lag_max_ns
FROM hist_quantiles l
LEFT JOIN groups g ON g.group_index = l.grp
LEFT JOIN phases p ON p.phase_index = l.phase
WHERE l.metric = 2
ORDER BY (l.grp IS NULL), l.grp, l.phase;

-- publish rows by final status per group and phase, against the plan
CREATE OR REPLACE VIEW status_counts AS
WITH c AS (
    SELECT grp, phase,
           sum(count) AS logged,
           sum(count) FILTER (WHERE status = status_code('acked')) AS acked,
           sum(count) FILTER (WHERE status = status_code('sent')) AS sent,
           sum(count) FILTER (WHERE status = status_code('timeout')) AS timeout,
           sum(count) FILTER (WHERE status = status_code('error')) AS error,
           sum(count) FILTER (WHERE status = status_code('dropped')) AS dropped,
           sum(count) FILTER (WHERE status = status_code('missed')) AS missed,
           sum(count) FILTER (WHERE status = status_code('unsent')) AS unsent
    FROM status_totals WHERE kind = kind_code('publish') GROUP BY grp, phase
)
SELECT g.group_name, p.phase, pl.publishes AS planned,
       coalesce(c.logged, 0)::BIGINT AS logged, coalesce(acked, 0)::BIGINT AS acked,
       coalesce(sent, 0)::BIGINT AS sent, coalesce(timeout, 0)::BIGINT AS timeout,
       coalesce(error, 0)::BIGINT AS error, coalesce(dropped, 0)::BIGINT AS dropped,
       coalesce(missed, 0)::BIGINT AS missed, coalesce(unsent, 0)::BIGINT AS unsent
FROM planned pl
JOIN groups g ON g.group_name = pl.group_name
JOIN phases p ON p.phase = pl.phase
LEFT JOIN c ON c.grp = g.group_index AND c.phase = p.phase_index
ORDER BY g.group_index, p.phase_index;

CREATE OR REPLACE VIEW errors_by_kind AS
-- from the failed rows' tallies made at ingest (error_totals): no scan of event_rows
SELECT (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[t.status + 1] AS status,
       (['publish', 'connect', 'disconnect', 'receive', 'error', 'command', 'reply'])[t.kind + 1] AS kind,
       coalesce(e.text, '') AS error, sum(t.count)::BIGINT AS count,
       nullif(min(t.first_ns), 9223372036854775807) AS first_ns,
       nullif(max(t.last_ns), -9223372036854775808) AS last_ns
FROM error_totals t
LEFT JOIN error_texts e ON e.worker = t.worker AND e.code = t.error
GROUP BY ALL
ORDER BY count DESC, status, kind, error;

CREATE OR REPLACE VIEW device_stats AS
SELECT r.device, d.device_id, g.group_name,
       count(*) AS publishes,
       count(*) FILTER (WHERE is_completed(status)) AS completed,
       count(*) FILTER (WHERE is_failed(status)) AS failed,
       max(seq) AS last_seq,
       avg(t_done_ns - t_intended_ns) FILTER (WHERE is_completed(status)) AS mean_latency_ns,
       sum(bytes)::BIGINT AS bytes
FROM event_rows r
LEFT JOIN devices d ON d.device = r.device
LEFT JOIN groups g ON g.group_index = d.group_index
WHERE r.kind = kind_code('publish')
GROUP BY ALL
ORDER BY r.device;

-- the whole run in one row: what SLOs are checked against
CREATE OR REPLACE VIEW run_summary AS
WITH c AS (
    SELECT coalesce(sum(count), 0)::BIGINT AS logged,
           coalesce(sum(count) FILTER (WHERE is_completed(status)), 0)::BIGINT AS completed,
           coalesce(sum(count) FILTER (WHERE is_failed(status)), 0)::BIGINT AS failed
    FROM status_totals WHERE kind = kind_code('publish')
)
SELECT
    r.planned_publishes AS planned,
    c.logged, c.completed, c.failed,
    coalesce(c.failed / nullif(c.logged, 0), 0) AS error_rate,
    coalesce(c.completed / nullif(r.planned_publishes, 0), 1) AS throughput_ratio,
    c.completed / (coalesce(r.stopped_at_ns, r.duration_ns) / 1e9) AS throughput_per_s,
    lp.p50_intended_ns AS latency_p50_ns, lp.p90_intended_ns AS latency_p90_ns,
    lp.p99_intended_ns AS latency_p99_ns, lp.p999_intended_ns AS latency_p999_ns,
    lp.max_intended_ns AS latency_max_ns,
    sl.lag_p99_ns AS schedule_lag_p99_ns
FROM runs r, c
LEFT JOIN latency_percentiles lp ON lp.group_name = '*'
LEFT JOIN schedule_lag sl ON sl.group_name = '*';

-- what probes received through the broker: end-to-end latency from the intended send time
-- (rows whose publisher is known: MQTT 5 simd-trace, or a payload timestamp)
CREATE OR REPLACE VIEW end_to_end AS
SELECT coalesce(g.group_name, '?') AS group_name,
       count(*) AS received,
       count(*) FILTER (WHERE r.t_intended_ns IS NOT NULL) AS traced,
       quantile_cont(r.t_done_ns - r.t_intended_ns, 0.5) AS p50_ns,
       quantile_cont(r.t_done_ns - r.t_intended_ns, 0.99) AS p99_ns,
       max(r.t_done_ns - r.t_intended_ns) AS max_ns
FROM event_rows r
LEFT JOIN devices d ON d.device = r.device
LEFT JOIN groups g ON g.group_index = d.group_index
WHERE r.kind = kind_code('receive')
GROUP BY ALL
ORDER BY 1;

-- ---------------------------------------------------------------- over time
-- The time axis: windows of intended send time, analysis_settings.window_ns wide (1 s for runs
-- up to 12 minutes; at most 720 windows a run). Rates are per second.

CREATE OR REPLACE MACRO window_ns() AS (SELECT max(window_ns) FROM analysis_settings);

-- what a run's publishes are called in its reports: an HTTP run sends requests
CREATE OR REPLACE MACRO publishes_word() AS (
    SELECT CASE WHEN any_value(target) ILIKE 'http%' THEN 'requests' ELSE 'publishes' END FROM runs
);

-- per window: planned (the scenario's rate shape), then what the log holds (exact counts and
-- maxima, tallied at ingest: simd/results/series.py)
CREATE OR REPLACE VIEW series AS
WITH c AS (
    SELECT "window",
           sum(count) AS scheduled,
           sum(count) FILTER (WHERE was_sent(status)) AS sent,
           sum(count) FILTER (WHERE status = status_code('acked')) AS acked,
           sum(count) FILTER (WHERE is_completed(status)) AS completed,
           sum(count) FILTER (WHERE is_failed(status)) AS failed,
           sum(bytes) AS bytes
    FROM series_counts
    GROUP BY ALL
),
m AS (
    SELECT "window",
           max(max_ns) FILTER (WHERE metric = 0) AS latency_max_ns,
           max(max_ns) FILTER (WHERE metric = 1) AS latency_sent_max_ns,
           max(max_ns) FILTER (WHERE metric = 2) AS lag_max_ns
    FROM series_max
    GROUP BY ALL
),
w AS (
    SELECT "window" FROM planned_series UNION SELECT "window" FROM c
)
SELECT "window",
       "window" * window_ns() AS start_ns,
       coalesce(p.planned, 0) / (window_ns() / 1e9) AS planned_per_s,
       coalesce(c.scheduled, 0) / (window_ns() / 1e9) AS scheduled_per_s,
       coalesce(c.sent, 0) / (window_ns() / 1e9) AS sent_per_s,
       coalesce(c.acked, 0) / (window_ns() / 1e9) AS acked_per_s,
       coalesce(c.completed, 0) / (window_ns() / 1e9) AS completed_per_s,
       coalesce(c.failed, 0) / (window_ns() / 1e9) AS failed_per_s,
       coalesce(c.scheduled, 0)::BIGINT AS scheduled, coalesce(c.sent, 0)::BIGINT AS sent,
       coalesce(c.completed, 0)::BIGINT AS completed, coalesce(c.failed, 0)::BIGINT AS failed,
       coalesce(c.failed / nullif(c.scheduled, 0), 0) AS error_rate,
       coalesce(c.bytes, 0)::BIGINT AS bytes,
       m.latency_max_ns, m.latency_sent_max_ns, m.lag_max_ns
FROM w
LEFT JOIN planned_series p USING ("window")
LEFT JOIN c USING ("window")
LEFT JOIN m USING ("window")
ORDER BY "window";

-- a series bucket's midpoint: 64 buckets per power of two (simd/results/histograms.py SERIES_SUB_BITS)
CREATE OR REPLACE MACRO series_bucket_mid(b) AS
    CASE WHEN b = 0 THEN 0.0
         ELSE pow(2, (b - 1) // 64) * (1 + (((b - 1) % 64) + 0.5) / 64) END;

-- per window: latency percentiles from intended and from actual send time, and schedule lag
-- percentiles (nearest rank over 1.6 %-wide buckets: within 0.8 %), maxima exact from `series`
CREATE OR REPLACE VIEW series_latency AS
WITH h AS (
    SELECT "window", metric, bucket, sum(count) AS n FROM series_hist GROUP BY ALL
),
cum AS (
    SELECT *, sum(n) OVER (PARTITION BY "window", metric ORDER BY bucket
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c,
              sum(n) OVER (PARTITION BY "window", metric) AS total
    FROM h
),
q AS (
    SELECT "window", metric, any_value(total) AS n,
           series_bucket_mid(min(bucket) FILTER (WHERE c >= ceil(0.5 * total))) AS p50,
           series_bucket_mid(min(bucket) FILTER (WHERE c >= ceil(0.95 * total))) AS p95,
           series_bucket_mid(min(bucket) FILTER (WHERE c >= ceil(0.99 * total))) AS p99
    FROM cum GROUP BY ALL
)
SELECT q."window", q."window" * window_ns() AS start_ns,
       max(n) FILTER (WHERE metric = 0) AS completed,
       least(max(p50) FILTER (WHERE metric = 0), any_value(s.latency_max_ns)) AS p50_ns,
       least(max(p95) FILTER (WHERE metric = 0), any_value(s.latency_max_ns)) AS p95_ns,
       least(max(p99) FILTER (WHERE metric = 0), any_value(s.latency_max_ns)) AS p99_ns,
       any_value(s.latency_max_ns) AS max_ns,
       least(max(p50) FILTER (WHERE metric = 1), any_value(s.latency_sent_max_ns)) AS p50_sent_ns,
       least(max(p95) FILTER (WHERE metric = 1), any_value(s.latency_sent_max_ns)) AS p95_sent_ns,
       least(max(p99) FILTER (WHERE metric = 1), any_value(s.latency_sent_max_ns)) AS p99_sent_ns,
       any_value(s.latency_sent_max_ns) AS max_sent_ns,
       least(max(p50) FILTER (WHERE metric = 2), any_value(s.lag_max_ns)) AS lag_p50_ns,
       least(max(p99) FILTER (WHERE metric = 2), any_value(s.lag_max_ns)) AS lag_p99_ns,
       any_value(s.lag_max_ns) AS lag_max_ns
FROM q
LEFT JOIN series s ON s."window" = q."window"
GROUP BY q."window"
ORDER BY q."window";

-- failed publishes per window by status and error text
CREATE OR REPLACE VIEW series_errors AS
SELECT f."window",
       f."window" * window_ns() AS start_ns,
       (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[f.status + 1] AS status,
       coalesce(e.text, '') AS error,
       sum(f.count)::BIGINT AS count
FROM series_error_counts f
LEFT JOIN error_texts e ON e.worker = f.worker AND e.code = f.error AND f.error > 0
GROUP BY ALL
ORDER BY 1, count DESC, status, error;

-- the whole run's latency distribution as a percentile curve (HdrHistogram's plot): value at
-- each percentile, from intended and from actual send time
CREATE OR REPLACE VIEW latency_distribution AS
WITH qs AS (
    SELECT unnest([0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999,
                   0.999999]) AS q
),
h AS (SELECT * FROM hist_cumulative WHERE grp IS NULL AND phase IS NULL AND metric IN (0, 1)),
mx AS (SELECT metric, max(max_ns) AS max_ns FROM latency_max GROUP BY metric)
SELECT qs.q AS quantile,
       least(bucket_mid(min(h.bucket) FILTER (WHERE h.metric = 0 AND h.cum >= greatest(1, ceil(qs.q * h.total)))),
             any_value(mx0.max_ns)) AS intended_ns,
       least(bucket_mid(min(h.bucket) FILTER (WHERE h.metric = 1 AND h.cum >= greatest(1, ceil(qs.q * h.total)))),
             any_value(mx1.max_ns)) AS sent_ns
FROM qs, h
LEFT JOIN mx mx0 ON mx0.metric = 0
LEFT JOIN mx mx1 ON mx1.metric = 1
GROUP BY qs.q
UNION ALL
SELECT 1.0, (SELECT max_ns FROM mx WHERE metric = 0), (SELECT max_ns FROM mx WHERE metric = 1)
ORDER BY quantile;

-- per group and topic template: counts, bytes, latency from intended send time (percentiles
-- from coarse buckets, within 0.8 %; exact max)
CREATE OR REPLACE VIEW topic_stats AS
WITH c AS (
    SELECT grp, message, sum(count) AS publishes,
           sum(count) FILTER (WHERE is_completed(status)) AS completed,
           sum(count) FILTER (WHERE is_failed(status)) AS failed,
           sum(bytes) AS bytes
    FROM topic_counts GROUP BY ALL
),
h AS (
    SELECT grp, message, bucket, sum(count) AS n FROM topic_hist GROUP BY ALL
),
cum AS (
    SELECT *, sum(n) OVER (PARTITION BY grp, message ORDER BY bucket
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cn,
              sum(n) OVER (PARTITION BY grp, message) AS total
    FROM h
),
q AS (
    SELECT grp, message,
           series_bucket_mid(min(bucket) FILTER (WHERE cn >= ceil(0.5 * total))) AS p50_ns,
           series_bucket_mid(min(bucket) FILTER (WHERE cn >= ceil(0.99 * total))) AS p99_ns
    FROM cum GROUP BY ALL
),
mx AS (SELECT grp, message, max(max_ns) AS max_ns FROM topic_max GROUP BY ALL)
SELECT g.group_name, m.message_name AS message, m.topic, m.qos,
       c.publishes::BIGINT AS publishes, coalesce(c.completed, 0)::BIGINT AS completed,
       coalesce(c.failed, 0)::BIGINT AS failed, c.bytes::BIGINT AS bytes,
       least(q.p50_ns, mx.max_ns) AS p50_ns, least(q.p99_ns, mx.max_ns) AS p99_ns, mx.max_ns
FROM c
JOIN groups g ON g.group_index = c.grp
LEFT JOIN messages m ON m.group_index = c.grp AND m.message = c.message
LEFT JOIN q ON q.grp = c.grp AND q.message = c.message
LEFT JOIN mx ON mx.grp = c.grp AND mx.message = c.message
ORDER BY g.group_name, m.message_name;

-- ---------------------------------------------------------------- endurance
-- Trends are least-squares lines over the windows, x in hours; `ci95` is the half-width of a
-- 95 % confidence interval of the slope (Student t by Cornish-Fisher; n-2 degrees of freedom).
-- Growth is the slope relative to the mean (0.05 = +5 % per hour).

-- (df as DOUBLE: regr_count is a UINTEGER, and 96 * df * df overflows it past 4,700 points)
CREATE OR REPLACE MACRO t95(df) AS
    1.959964 + (1.959964 ^ 3 + 1.959964) / (4 * df::DOUBLE)
    + (5 * 1.959964 ^ 5 + 16 * 1.959964 ^ 3 + 3 * 1.959964) / (96 * df::DOUBLE * df::DOUBLE);

CREATE OR REPLACE MACRO slope_ci95(n, sxx, syy, sxy) AS
    CASE WHEN n > 2 AND sxx > 0
         THEN t95(n - 2) * sqrt(greatest(syy - sxy * sxy / sxx, 0) / (n - 2) / sxx) END;

-- p99 latency (from intended and from sent) and throughput over the run
CREATE OR REPLACE VIEW trends AS
WITH pts AS (
    SELECT l.start_ns / 3.6e12 AS h, l.p99_ns::DOUBLE AS p99, l.p99_sent_ns::DOUBLE AS p99s,
           s.completed_per_s / nullif(s.planned_per_s, 0) AS ratio
    FROM series_latency l JOIN series s USING ("window")
    WHERE l.completed > 0
),
f AS (
    SELECT 'latency_p99' AS metric, max(h) - min(h) AS span_h, regr_count(p99, h) AS n,
           regr_slope(p99, h) AS slope,
           avg(p99) AS mean, regr_sxx(p99, h) AS sxx, regr_syy(p99, h) AS syy,
           regr_sxy(p99, h) AS sxy, regr_r2(p99, h) AS r2 FROM pts
    UNION ALL
    SELECT 'latency_p99_sent', max(h) - min(h), regr_count(p99s, h), regr_slope(p99s, h), avg(p99s),
           regr_sxx(p99s, h), regr_syy(p99s, h), regr_sxy(p99s, h), regr_r2(p99s, h) FROM pts
    UNION ALL
    SELECT 'throughput_ratio', max(h) - min(h), regr_count(ratio, h), regr_slope(ratio, h), avg(ratio),
           regr_sxx(ratio, h), regr_syy(ratio, h), regr_sxy(ratio, h), regr_r2(ratio, h) FROM pts
)
SELECT metric, n AS points, span_h, mean, slope AS slope_per_h,
       slope_ci95(n, sxx, syy, sxy) AS slope_ci95_per_h,
       slope / nullif(mean, 0) AS growth_per_h,
       slope_ci95(n, sxx, syy, sxy) / nullif(abs(mean), 0) AS growth_ci95_per_h,
       r2
FROM f;

-- runs of consecutive windows whose error rate passes analysis_settings.burst_error_rate
CREATE OR REPLACE VIEW error_bursts AS
WITH w AS (
    SELECT "window", start_ns, scheduled, failed, error_rate
    FROM series
    WHERE scheduled > 0 AND error_rate > (SELECT max(burst_error_rate) FROM analysis_settings)
),
g AS (SELECT *, "window" - row_number() OVER (ORDER BY "window") AS island FROM w)
SELECT row_number() OVER (ORDER BY min("window")) AS burst,
       min(start_ns) AS start_ns, max(start_ns) + window_ns() AS end_ns,
       count(*) AS windows, sum(failed) AS failed, sum(scheduled) AS scheduled,
       sum(failed) / sum(scheduled) AS error_rate, max(error_rate) AS peak_error_rate
FROM g
GROUP BY island
ORDER BY start_ns;

-- the generator's own resources, per worker: RSS growth per hour, CPU use, open fds
CREATE OR REPLACE VIEW resource_growth AS
WITH s AS (
    SELECT worker, t_ns / 3.6e12 AS h, rss_bytes::DOUBLE AS rss, open_fds::DOUBLE AS fds,
           (cpu_ns - lag(cpu_ns) OVER w) / nullif(t_ns - lag(t_ns) OVER w, 0) AS cpu
    FROM samples
    WINDOW w AS (PARTITION BY worker ORDER BY t_ns)
)
SELECT worker, count(*) AS samples,
       min(h) * 3600 AS first_s, max(h) * 3600 AS last_s,
       avg(rss) AS rss_mean_bytes, max(rss) AS rss_max_bytes,
       regr_slope(rss, h) AS rss_slope_bytes_per_h,
       -- growth per hour only over 10 minutes of samples or more: a 20 s run's start-up
       -- is not a rate (it read "+1012 %/h"); the raw slope stays
       CASE WHEN max(h) - min(h) >= 1 / 6 THEN regr_slope(rss, h) / nullif(avg(rss), 0) END
           AS rss_growth_per_h,
       CASE WHEN max(h) - min(h) >= 1 / 6 THEN
           slope_ci95(regr_count(rss, h), regr_sxx(rss, h), regr_syy(rss, h), regr_sxy(rss, h))
           / nullif(avg(rss), 0) END AS rss_growth_ci95_per_h,
       avg(cpu) AS cpu_mean, max(cpu) AS cpu_max,
       avg(fds) AS fds_mean, max(fds) AS fds_max,
       regr_slope(fds, h) AS fds_slope_per_h
FROM s
GROUP BY worker
ORDER BY worker;

-- ---------------------------------------------------------------- delivery (probes)
-- Does an MQTT topic filter take a topic? ('+' one level, '#' the rest, 'a/#' also 'a')
CREATE OR REPLACE MACRO mqtt_match(filter, topic) AS
    filter = '#' OR regexp_full_match(topic, replace(replace(
        regexp_replace(filter, '([.^$*?()\[\]{}|\\])', '\\\1', 'g'), '+', '[^/]*'), '/#', '(/.*)?'));

-- which (device, message) topics each probe's filter takes (topics rendered from the group's
-- templates: {device_id}, {group}, {index}, {message}; a {seq} level is taken as '0')
CREATE OR REPLACE VIEW probe_matches AS
WITH dm AS (
    SELECT d.device, m.message,
           replace(replace(replace(replace(replace(m.topic, '{device_id}', d.device_id),
               '{group}', g.group_name), '{index}', (d.device - g.first_device)::VARCHAR),
               '{message}', m.message_name), '{seq}', '0') AS topic
    FROM devices d
    JOIN groups g USING (group_index)
    JOIN messages m USING (group_index)
)
SELECT p.probe, dm.device, dm.message, dm.topic FROM dm, probes p WHERE mqtt_match(p.topic, dm.topic);

-- Per probe, every publish it should have received (it left the generator: acked, or sent at
-- qos 0; its topic matches the probe's filter) and every message it did receive: expected,
-- received, how often (n), how many of those came after a higher seq of the same device
-- (reordered), and end-to-end latency of the first copy from the intended time. Needs traced
-- publishes (mqtt.trace), which name their (device, seq) to the probe.
CREATE OR REPLACE VIEW delivery_rows AS
WITH pub AS (
    SELECT w.probe, e.device, e.seq, e.message, w.topic, e.phase, e.t_intended_ns
    FROM event_rows e
    JOIN probe_matches w ON w.device = e.device AND w.message = e.message
    WHERE e.kind = kind_code('publish') AND is_completed(e.status)
),
rcv AS (
    SELECT message AS probe, device, seq, t_done_ns,
           seq < max(seq) OVER (PARTITION BY message, device ORDER BY t_done_ns
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS out_of_order
    FROM event_rows WHERE kind = kind_code('receive') AND device >= 0 AND message IN (SELECT probe FROM probes)
),
r AS (
    SELECT probe, device, seq, count(*) AS n, min(t_done_ns) AS first_ns,
           count(*) FILTER (WHERE out_of_order) AS reordered
    FROM rcv GROUP BY ALL
)
SELECT coalesce(p.probe, r.probe) AS probe, coalesce(p.device, r.device) AS device,
       coalesce(p.seq, r.seq) AS seq, p.message, p.topic, p.phase,
       p.seq IS NOT NULL AS expected, r.seq IS NOT NULL AS received, coalesce(r.n, 0) AS n,
       coalesce(r.reordered, 0) AS reordered, r.first_ns - p.t_intended_ns AS latency_ns
FROM pub p FULL JOIN r ON r.probe = p.probe AND r.device = p.device AND r.seq = p.seq;

-- delivery per probe and publishing device: expected, delivered, lost (never received),
-- duplicated (extra copies), reordered, unexpected (received but not expected: e.g. a publish
-- logged timeout that arrived anyway), end-to-end latency p50/p99/max
CREATE OR REPLACE VIEW delivery AS
SELECT pr.name AS probe, j.device, d.device_id, g.group_name,
       count(*) FILTER (WHERE expected) AS expected,
       count(*) FILTER (WHERE expected AND received) AS delivered,
       count(*) FILTER (WHERE expected AND NOT received) AS lost,
       sum(greatest(n - 1, 0))::BIGINT AS duplicated,
       sum(reordered)::BIGINT AS reordered,
       count(*) FILTER (WHERE received AND NOT expected) AS unexpected,
       quantile_cont(latency_ns, 0.5) AS latency_p50_ns,
       quantile_cont(latency_ns, 0.99) AS latency_p99_ns,
       max(latency_ns) AS latency_max_ns
FROM delivery_rows j
JOIN probes pr ON pr.probe = j.probe
LEFT JOIN devices d ON d.device = j.device
LEFT JOIN groups g ON g.group_index = d.group_index
GROUP BY ALL
ORDER BY probe, j.device;

-- the same per probe and topic (as published: the template rendered for the device)
CREATE OR REPLACE VIEW delivery_topics AS
SELECT pr.name AS probe, j.topic,
       count(*) FILTER (WHERE expected) AS expected,
       count(*) FILTER (WHERE expected AND received) AS delivered,
       count(*) FILTER (WHERE expected AND NOT received) AS lost,
       sum(greatest(n - 1, 0))::BIGINT AS duplicated,
       sum(reordered)::BIGINT AS reordered,
       quantile_cont(latency_ns, 0.5) AS latency_p50_ns,
       quantile_cont(latency_ns, 0.99) AS latency_p99_ns
FROM delivery_rows j
JOIN probes pr ON pr.probe = j.probe
WHERE j.expected
GROUP BY ALL
ORDER BY probe, j.topic;

-- per probe and group: what `simd report` shows
CREATE OR REPLACE VIEW delivery_summary AS
SELECT probe, group_name, count(*) AS devices,
       sum(expected)::BIGINT AS expected, sum(delivered)::BIGINT AS delivered,
       sum(lost)::BIGINT AS lost, sum(lost) / nullif(sum(expected), 0) AS loss_rate,
       sum(duplicated)::BIGINT AS duplicated, sum(reordered)::BIGINT AS reordered,
       sum(unexpected)::BIGINT AS unexpected, max(latency_p99_ns) AS worst_device_p99_ns
FROM delivery
GROUP BY ALL
ORDER BY probe, group_name;

-- ---------------------------------------------------------------- SLOs
-- every SLO against what the run observed (endurance ones from the trends): the scenario's
-- [slo], the default error_rate when it sets none, and log_integrity (damaged log ranges: 0)
CREATE OR REPLACE VIEW slo_results AS
WITH tr AS MATERIALIZED (SELECT * FROM trends),  -- once, not once per subquery (170 ms a read)
observed AS (
    UNPIVOT (
        SELECT latency_p50_ns::DOUBLE AS latency_p50, latency_p90_ns::DOUBLE AS latency_p90,
               latency_p99_ns::DOUBLE AS latency_p99, latency_p999_ns::DOUBLE AS latency_p999,
               error_rate::DOUBLE AS error_rate, throughput_ratio::DOUBLE AS throughput_ratio,
               schedule_lag_p99_ns::DOUBLE AS schedule_lag_p99,
               (SELECT growth_per_h FROM tr WHERE metric = 'latency_p99')::DOUBLE
                   AS latency_p99_growth_per_h,
               (SELECT abs(slope_per_h) FROM tr WHERE metric = 'throughput_ratio')::DOUBLE
                   AS throughput_drift_per_h,
               (SELECT max(rss_growth_per_h) FROM resource_growth)::DOUBLE AS memory_growth_per_h,
               (SELECT count(*) FROM error_bursts)::DOUBLE AS error_bursts,
               (SELECT sum(lost) / nullif(sum(expected), 0) FROM delivery_summary
                WHERE EXISTS (FROM slo WHERE name = 'loss_rate'))::DOUBLE AS loss_rate,
               (SELECT count(*) FROM log_damage)::DOUBLE AS log_integrity
        FROM run_summary
    ) ON COLUMNS(*) INTO NAME name VALUE observed
)
SELECT s.name, s.unit, s.threshold, o.observed, s.origin,
       CASE WHEN o.observed IS NULL THEN FALSE
            WHEN s.higher_is_better THEN o.observed >= s.threshold
            ELSE o.observed <= s.threshold END AS passed,
       o.observed - s.threshold AS margin
FROM slo s
LEFT JOIN observed o ON o.name = s.name
ORDER BY s.name;

-- Is the log whole? Damaged ranges (valid frames after them were all read), the bytes and rows
-- they held as far as known, unreadable segments, and torn tails (a frame cut at the end).
CREATE OR REPLACE VIEW log_integrity AS
SELECT count(*) AS damaged_ranges,
       coalesce(sum(bytes), 0) AS damaged_bytes,
       coalesce(sum(rows_lost), 0) AS rows_lost,
       count(*) FILTER (WHERE rows_lost IS NULL) AS ranges_rows_unknown,
       count(*) FILTER (WHERE starts_with(reason, 'unreadable')) AS unreadable_segments,
       (SELECT count(*) FROM ingested WHERE torn_reason IS NOT NULL) AS torn_tails
FROM log_damage;

-- ---------------------------------------------------------------- recommendations
-- What the data says about where the limit was, with its evidence. Rules:
--   generator-bound: schedule lag p99 > 10 ms and above the target's own p99 (from sent);
--   target-bound: per window, latency from sent rises with the sent rate (corr >= 0.5, p99
--     spread >= 2x) while the generator kept its schedule; or timeouts / errors from the target;
--   connection problems: failed connects or dropped sessions.
CREATE OR REPLACE VIEW recommendations AS
WITH s AS (
    SELECT r.*, lp.p99_sent_ns, sl.lag_p99_ns
    FROM run_summary r
    LEFT JOIN latency_percentiles lp ON lp.group_name = '*'
    LEFT JOIN schedule_lag sl ON sl.group_name = '*'
),
pts AS (
    SELECT x.sent_per_s AS x, l.p99_sent_ns AS y
    FROM series_latency l JOIN series x USING ("window")
    WHERE l.completed > 0
),
rc AS (
    SELECT corr(x, y) AS c, count(*) AS n, min(y) AS lo, max(y) AS hi,
           max(y) / nullif(min(y), 0) AS spread
    FROM pts
),
st AS (
    SELECT coalesce(sum(count) FILTER (WHERE kind = kind_code('connect') AND status = status_code('error')), 0) AS connect_failed,
           coalesce(sum(count) FILTER (WHERE kind = kind_code('connect')), 0) AS connects,
           coalesce(sum(count) FILTER (WHERE kind = kind_code('disconnect') AND status = status_code('error')), 0) AS dropped_sessions,
           coalesce(sum(count) FILTER (WHERE kind = kind_code('publish') AND status = status_code('timeout')), 0) AS timeouts,
           coalesce(sum(count) FILTER (WHERE kind = kind_code('publish') AND status IN (status_code('error'), status_code('dropped'))), 0) AS errors
    FROM status_totals
),
-- the steady part: the median of the per-window lag p99 after the first window (a start-up
-- burst there is not a bottleneck); a run of one window has only that one
steady AS (
    SELECT coalesce(median(lag_p99_ns) FILTER (WHERE "window" > lo), max(lag_p99_ns)) AS lag_ns
    FROM series_latency, (SELECT min("window") AS lo FROM series_latency)
),
f AS (
    SELECT 1 AS rank, 'generator-bound' AS finding, 'warning' AS severity,
           format('schedule lag p99 {:.1f} ms ({:.1f} ms in the steady part) while the target '
                  || 'answered in {:.1f} ms p99 (from sent)', s.lag_p99_ns / 1e6,
                  coalesce(steady.lag_ns, 0) / 1e6, coalesce(s.p99_sent_ns, 0) / 1e6) AS evidence,
           'the generator could not keep its schedule: add workers (--workers), shard the run, '
           || 'or lower the rate per worker; latency from intended time includes this lag'
               AS advice
    FROM s, steady
    WHERE s.lag_p99_ns > 10e6 AND s.lag_p99_ns > coalesce(s.p99_sent_ns, 0)
      AND coalesce(steady.lag_ns, 0) > 10e6
    UNION ALL
    SELECT 2, 'target-bound', 'warning',
           format('latency from sent p99 rose from {:.1f} to {:.1f} ms per window as the sent rate '
                  || 'rose (correlation {:.2f} over {} windows) while schedule lag p99 stayed {:.1f} ms',
                  rc.lo / 1e6, rc.hi / 1e6, rc.c, rc.n, coalesce(s.lag_p99_ns, 0) / 1e6),
           'the system under test is the limit at this rate: look at its capacity (broker CPU, '
           || 'queues, persistence) before adding load'
    FROM rc, s
    WHERE rc.n >= 5 AND isfinite(rc.c) AND rc.c >= 0.5 AND rc.spread >= 2
      AND NOT (coalesce(s.lag_p99_ns, 0) > 10e6 AND s.lag_p99_ns > coalesce(s.p99_sent_ns, 0)
               AND coalesce((SELECT lag_ns FROM steady), 0) > 10e6)
    UNION ALL
    SELECT 3, 'target errors', 'warning',
           format('{} {} timed out and {} failed ({:.3f} % of logged)', st.timeouts,
                  publishes_word(), st.errors,
                  100.0 * (st.timeouts + st.errors) / nullif(s.logged, 0)),
           'the target did not answer in time or refused ' || publishes_word() || ': see '
           || 'errors_by_kind and series_errors for when; raise the timeout only if the target '
           || 'is known to be slow'
    FROM st, s
    WHERE st.timeouts + st.errors > 0
    UNION ALL
    SELECT 4, 'connection problems', 'warning',
           format('{} of {} connection attempts failed; {} sessions dropped by the peer',
                  st.connect_failed, st.connects, st.dropped_sessions),
           'check the target''s connection limit and auth, the open-file limit (ulimit -n), '
           || 'ephemeral ports (run.source_addresses) and the connect ramp (connect_rate)'
    FROM st
    WHERE st.connect_failed > 0 OR st.dropped_sessions > 0
)
SELECT finding, severity, evidence, advice FROM (
    SELECT * FROM f
    UNION ALL
    SELECT 9, 'no bottleneck', 'ok',
       format('schedule lag p99 {:.1f} ms, latency p99 {:.1f} ms (from sent), {:.1f} % of planned '
              || '{} completed', coalesce(s.lag_p99_ns, 0) / 1e6,
              coalesce(s.p99_sent_ns, 0) / 1e6, 100.0 * s.throughput_ratio, publishes_word()),
       'the generator and the target kept up at this load; raise the rate to find the limit'
    FROM s
    WHERE NOT EXISTS (SELECT 1 FROM f)
)
ORDER BY rank;

-- ---------------------------------------------------------------- compare
-- the figures `simd compare` puts side by side: one row per metric, with which way is better
-- ('info': shown, never a verdict). Per group and phase p99 follow the whole-run rows.
CREATE OR REPLACE VIEW compare_metrics AS
WITH s AS (SELECT * FROM run_summary),
lp AS (SELECT * FROM latency_percentiles WHERE group_name = '*')
SELECT * FROM (VALUES
    (1, 'throughput_per_s', 'per_s', 'higher', (SELECT throughput_per_s FROM s)::DOUBLE),
    (2, 'throughput_ratio', 'ratio', 'higher', (SELECT throughput_ratio FROM s)::DOUBLE),
    (3, 'error_rate', 'ratio', 'lower', (SELECT error_rate FROM s)::DOUBLE),
    (4, 'latency_p50', 'ns', 'lower', (SELECT p50_intended_ns FROM lp)::DOUBLE),
    (5, 'latency_p90', 'ns', 'lower', (SELECT p90_intended_ns FROM lp)::DOUBLE),
    (6, 'latency_p99', 'ns', 'lower', (SELECT p99_intended_ns FROM lp)::DOUBLE),
    (7, 'latency_p999', 'ns', 'lower', (SELECT p999_intended_ns FROM lp)::DOUBLE),
    (8, 'latency_max', 'ns', 'info', (SELECT max_intended_ns FROM lp)::DOUBLE),
    (9, 'latency_p50_sent', 'ns', 'lower', (SELECT p50_sent_ns FROM lp)::DOUBLE),
    (10, 'latency_p99_sent', 'ns', 'lower', (SELECT p99_sent_ns FROM lp)::DOUBLE),
    (11, 'schedule_lag_p99', 'ns', 'lower', (SELECT schedule_lag_p99_ns FROM s)::DOUBLE)
) AS t(ord, metric, unit, better, value)
UNION ALL
SELECT 100 + row_number() OVER (ORDER BY group_name, phase),
       'latency_p99 ' || group_name || '/' || phase, 'ns', 'lower', p99_intended_ns::DOUBLE
FROM latency_percentiles
WHERE group_name <> '*'
ORDER BY 1;

-- ---------------------------------------------------------------- replay fidelity
-- replay runs: every replayed publish beside the recorded message it plays. Device d of a
-- replay group is copy d // sources of recorded device d % sources; its publish seq is
-- pass * n + rank (n: its recorded messages). Expected time: lead_in + (pass * period +
-- offset) / speed, rounded half to even as the scheduler does; send offset: sent - expected.
CREATE OR REPLACE VIEW replay_messages AS
WITH r AS (
    SELECT rg.*, g.group_name, g.first_device
    FROM replay_groups rg JOIN groups g USING (group_index)
), e AS (
    SELECT r.group_index, r.group_name, r.sources, r.lead_in_ns, r.period_ns, r.speed,
           ev.device, ev.seq, ev.status, ev.t_intended_ns, ev.t_sent_ns, ev.bytes,
           (ev.device - r.first_device) % r.sources AS source,
           (ev.device - r.first_device) // r.sources AS copy
    FROM event_rows ev
    JOIN r ON ev.device >= r.first_device AND ev.device < r.first_device + r.sources * r.fanout
    WHERE ev.kind = kind_code('publish')
)
SELECT
    e.group_name, e.device, d.device_id, e.source, e.copy,
    e.seq // s.messages AS pass, e.seq % s.messages AS rank, e.seq,
    (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[e.status + 1] AS status,
    m.topic AS recorded_topic, m.offset_ns,
    e.lead_in_ns + round_even((e.seq // s.messages * e.period_ns + m.offset_ns) / e.speed, 0)::BIGINT
        AS t_expected_ns,
    e.t_intended_ns,
    e.t_sent_ns,
    e.t_intended_ns - t_expected_ns AS intended_error_ns,
    e.t_sent_ns - t_expected_ns AS send_offset_ns,
    e.bytes::INTEGER AS bytes, m.bytes AS recorded_bytes
FROM e
JOIN replay_sources s ON s.group_index = e.group_index AND s.source = e.source
JOIN recorded_messages m
    ON m.group_index = e.group_index AND m.source = e.source AND m.rank = e.seq % s.messages
LEFT JOIN devices d ON d.device = e.device;

-- per second of recording time (replay time x speed, so a 10x replay is compared in tenths of
-- a second): publishes the recording holds (x fanout, every pass) against those replayed, by
-- intended and by actual send time (from the replay_bins tallies)
CREATE OR REPLACE VIEW replay_series AS
WITH r AS (
    SELECT rg.*, g.group_name FROM replay_groups rg JOIN groups g USING (group_index)
), recorded AS (
    SELECT r.group_index, (p.pass * r.period_ns + m.offset_ns) // 1000000000 AS second,
           count(*) * any_value(r.fanout) AS recorded
    FROM r
    CROSS JOIN LATERAL (SELECT unnest(range(r.passes)) AS pass) p
    JOIN recorded_messages m ON m.group_index = r.group_index
    WHERE r.lead_in_ns + round_even((p.pass * r.period_ns + m.offset_ns) / r.speed, 0)
          < (SELECT duration_ns FROM runs)
    GROUP BY ALL
), replayed AS (
    SELECT group_index, second,
           sum(count) FILTER (WHERE NOT by_sent) AS replayed_intended,
           sum(count) FILTER (WHERE by_sent) AS replayed_sent
    FROM replay_bins GROUP BY ALL
)
SELECT r.group_name, second, coalesce(recorded, 0) AS recorded,
       coalesce(replayed_intended, 0) AS replayed_intended,
       coalesce(replayed_sent, 0) AS replayed_sent
FROM recorded
FULL OUTER JOIN replayed USING (group_index, second)
JOIN r USING (group_index)
ORDER BY r.group_name, second;

-- one row per replay group: how faithfully the run replayed its recording. Offsets in ms, read
-- from the tallies' histogram (within 0.05 %; exact max); correlations of the per-second counts
-- above (1.0 = the same shape).
CREATE OR REPLACE VIEW replay_fidelity AS
WITH r AS (
    SELECT rg.*, g.group_name FROM replay_groups rg JOIN groups g USING (group_index)
), c AS (
    SELECT group_index, sum(replayed) AS replayed, sum(sent) AS sent,
           sum(completed) AS completed, sum(size_mismatches) AS size_mismatches,
           max(intended_error_max_ns) AS intended_error_max_ns
    FROM replay_counts GROUP BY group_index
), h AS (
    SELECT group_index, bucket,
           sum(sum(count)) OVER (PARTITION BY group_index ORDER BY bucket
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
           sum(sum(count)) OVER (PARTITION BY group_index) AS total
    FROM replay_offset_hist GROUP BY group_index, bucket
), q AS (
    SELECT group_index,
           min(bucket) FILTER (WHERE cum >= ceil(0.5 * total)) AS b50,
           min(bucket) FILTER (WHERE cum >= ceil(0.99 * total)) AS b99
    FROM h GROUP BY group_index
), mx AS (
    SELECT group_index, max(max_ns) AS max_ns FROM replay_offset_max GROUP BY group_index
), s AS (
    SELECT group_name, sum(recorded) AS planned,
           corr(recorded, replayed_intended) AS correlation_intended,
           corr(recorded, replayed_sent) AS correlation_sent,
           count(*) AS seconds
    FROM replay_series GROUP BY group_name
)
SELECT r.group_name, r.recording, r.recorded_from, r.recorded_messages, r.sources, r.fanout,
       r.passes, r.speed, s.planned, coalesce(c.replayed, 0) AS replayed,
       coalesce(c.sent, 0) AS sent, coalesce(c.completed, 0) AS completed,
       c.intended_error_max_ns,
       least(bucket_mid(q.b50), mx.max_ns) / 1e6 AS send_offset_p50_ms,
       least(bucket_mid(q.b99), mx.max_ns) / 1e6 AS send_offset_p99_ms,
       mx.max_ns / 1e6 AS send_offset_max_ms,
       s.seconds, s.correlation_intended, s.correlation_sent,
       coalesce(c.size_mismatches, 0) AS size_mismatches,
       r.damaged AS missing_spans
FROM r
LEFT JOIN c USING (group_index) LEFT JOIN q USING (group_index) LEFT JOIN mx USING (group_index)
LEFT JOIN s USING (group_name)
ORDER BY r.group_name;

-- ---------------------------------------------------------------- http journeys
-- every step of every journey: a journey group logs `steps` rows per arrival, seq = journey *
-- steps + step, so the journey's sequence id is seq // steps; latency per step from its send
CREATE OR REPLACE VIEW journey_steps AS
SELECT e.group_name, e.device, e.device_id, e.seq // g.steps AS journey, e.seq % g.steps AS step,
       e.message AS request, e.status, e.t_intended_ns, e.t_sent_ns, e.t_done_ns,
       e.t_done_ns - e.t_sent_ns AS latency_ns, e.error
FROM events e JOIN groups g USING (group_name)
WHERE g.steps > 1 AND e.kind = 'publish';

-- one row per journey: its steps, how many passed, and the whole journey's latency (from its
-- intended start to its last response), with the first error
CREATE OR REPLACE VIEW journeys AS
SELECT group_name, device, any_value(device_id) AS device_id, journey,
       count(*) AS steps,
       count(*) FILTER (WHERE status = 'acked') AS passed,
       bool_and(status = 'acked') AS ok,
       min(t_intended_ns) AS t_start_ns,
       max(t_done_ns) AS t_end_ns,
       max(t_done_ns) - min(t_intended_ns) AS latency_ns,
       min_by(error, step) FILTER (WHERE error IS NOT NULL) AS first_error
FROM journey_steps
GROUP BY group_name, device, journey;

-- per journey group: each step's request count, passes and latency (from its send), then the
-- whole journey (step NULL)
CREATE OR REPLACE VIEW journey_stats AS
SELECT * FROM (
    SELECT group_name, step, any_value(request) AS request, count(*) AS requests,
           count(*) FILTER (WHERE status = 'acked') AS passed,
           quantile_cont(latency_ns, 0.5) AS p50_ns, quantile_cont(latency_ns, 0.99) AS p99_ns,
           max(latency_ns) AS max_ns
    FROM journey_steps GROUP BY group_name, step
    UNION ALL
    SELECT group_name, NULL, '(whole journey)', count(*), count(*) FILTER (WHERE ok),
           quantile_cont(latency_ns, 0.5), quantile_cont(latency_ns, 0.99), max(latency_ns)
    FROM journeys GROUP BY group_name
)
ORDER BY group_name, step NULLS LAST;

-- each shard of the run beside what it logged: a missing shard is a gap in coverage (its
-- devices and planned publishes), not silence. start_lead_ms: how long before t=0 the shard
-- was ready (negative: it started late). planned_share: its part of the run's planned total.
CREATE OR REPLACE VIEW shard_coverage AS
SELECT s.shard, s.shards, s.present, s.state, s.device_lo, s.device_hi,
       s.device_hi - s.device_lo AS devices, s.planned_publishes,
       s.planned_publishes / nullif(sum(s.planned_publishes) OVER (), 0) AS planned_share,
       coalesce(i.rows, 0) AS rows_logged, s.workers, s.host,
       (s.t0_epoch_ns - s.ready_wall_ns) / 1e6 AS start_lead_ms,
       s.clock_synced, s.clock_est_error_us, s.clock_max_error_us
FROM shards s
LEFT JOIN (
    SELECT worker // 1000 AS shard, sum(rows) AS rows FROM ingested GROUP BY ALL
) i ON i.shard = s.shard AND s.present
ORDER BY s.shard;

-- ---------------------------------------------------------------- load steps and capacity
-- Per phase, all groups together: offered (planned) and achieved rates, latency from intended
-- and from sent, schedule lag, errors. `simd capacity` runs each load step as a phase, so this
-- is its search, step by step; it works on any run's phases.
CREATE OR REPLACE VIEW phase_stats AS
WITH h AS (
    SELECT phase, metric, bucket, sum(count) AS n FROM latency_hist GROUP BY ALL
),
c AS (
    SELECT *,
           sum(n) OVER (PARTITION BY phase, metric ORDER BY bucket
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
           sum(n) OVER (PARTITION BY phase, metric) AS total
    FROM h
),
q AS (
    SELECT phase, metric,
           min(bucket) FILTER (WHERE cum >= ceil(0.5 * total)) AS b50,
           min(bucket) FILTER (WHERE cum >= ceil(0.99 * total)) AS b99
    FROM c GROUP BY ALL
),
mx AS (SELECT phase, metric, max(max_ns) AS max_ns FROM latency_max GROUP BY ALL),
pq AS (
    SELECT q.phase, q.metric, least(bucket_mid(b50), mx.max_ns) AS p50,
           least(bucket_mid(b99), mx.max_ns) AS p99
    FROM q JOIN mx USING (phase, metric)
),
st AS (
    SELECT phase, sum(count) AS logged,
           sum(count) FILTER (WHERE is_completed(status)) AS completed,
           sum(count) FILTER (WHERE is_failed(status)) AS failed,
           sum(count) FILTER (WHERE NOT was_sent(status)) AS not_sent
    FROM status_totals WHERE kind = kind_code('publish') GROUP BY phase
),
pl AS (SELECT phase, sum(publishes) AS planned FROM planned GROUP BY phase)
SELECT p.phase_index, p.phase, p.start_ns, p.end_ns,
       coalesce(pl.planned, 0)::BIGINT AS planned,
       coalesce(pl.planned, 0) / ((p.end_ns - p.start_ns) / 1e9) AS offered_per_s,
       coalesce(st.completed, 0) / ((p.end_ns - p.start_ns) / 1e9) AS achieved_per_s,
       coalesce(st.logged, 0)::BIGINT AS logged, coalesce(st.completed, 0)::BIGINT AS completed,
       coalesce(st.failed, 0)::BIGINT AS failed,
       coalesce(st.not_sent, 0)::BIGINT AS not_sent,
       coalesce(st.failed / nullif(st.logged, 0), 0) AS error_rate,
       coalesce(st.completed / nullif(pl.planned, 0), 1) AS throughput_ratio,
       i.p50 AS latency_p50_ns, i.p99 AS latency_p99_ns, s.p99 AS latency_p99_sent_ns,
       l.p50 AS lag_p50_ns, l.p99 AS lag_p99_ns
FROM phases p
LEFT JOIN pl ON pl.phase = p.phase
LEFT JOIN st ON st.phase = p.phase_index
LEFT JOIN pq i ON i.phase = p.phase_index AND i.metric = 0
LEFT JOIN pq s ON s.phase = p.phase_index AND s.metric = 1
LEFT JOIN pq l ON l.phase = p.phase_index AND l.metric = 2
ORDER BY p.phase_index;

-- Each step (phase) judged against the scenario's SLOs that a step can be held to (latency_p99,
-- error_rate, schedule_lag_p99, throughput_ratio, loss_rate: delivery loss at the probes of the
-- publishes of that step): `breached` names the ones it broke. A step
-- that started after the run was stopped is `reached = false`. `bound` says which side broke:
-- 'generator' when publishes left late (schedule lag p99 over its SLO or over 10 ms) and the
-- lag exceeds the target's own p99 (from sent), or when most failures are simd's own (missed,
-- unsent: a worker down); else 'target' (its latency from sent, its errors; a slow target's
-- back-pressure shows as lag too, but then its own latency is the larger).
CREATE OR REPLACE VIEW capacity_steps AS
WITH loss AS (  -- delivery loss at probes per phase of the publish (only with a loss_rate SLO)
    SELECT phase, count(*) FILTER (WHERE NOT received) / count(*) AS loss_rate
    FROM delivery_rows
    WHERE expected AND EXISTS (FROM slo WHERE name = 'loss_rate')
    GROUP BY phase
),
j AS (
    SELECT ps.phase_index,
           list(s.name ORDER BY s.name) FILTER (WHERE
               (s.name = 'latency_p99' AND ps.latency_p99_ns > s.threshold)
               OR (s.name = 'error_rate' AND ps.error_rate > s.threshold)
               OR (s.name = 'schedule_lag_p99' AND ps.lag_p99_ns > s.threshold)
               OR (s.name = 'throughput_ratio' AND ps.throughput_ratio < s.threshold)
               OR (s.name = 'loss_rate' AND coalesce(l.loss_rate, 0) > s.threshold)
           ) AS breached
    FROM phase_stats ps
    CROSS JOIN (FROM slo WHERE origin = 'scenario') s
    LEFT JOIN loss l ON l.phase = ps.phase_index
    GROUP BY ps.phase_index
)
SELECT ps.*,
       ps.start_ns < coalesce(r.stopped_at_ns, r.duration_ns) AS reached,
       CASE WHEN ps.start_ns < coalesce(r.stopped_at_ns, r.duration_ns)
            THEN coalesce(len(j.breached), 0) = 0 END AS passed,
       coalesce(j.breached, []) AS breached,
       CASE WHEN coalesce(len(j.breached), 0) = 0 THEN NULL
            WHEN (list_contains(j.breached, 'schedule_lag_p99') OR ps.lag_p99_ns > 10e6)
                 AND ps.lag_p99_ns > coalesce(ps.latency_p99_sent_ns, 0)
            THEN 'generator'
            WHEN ps.not_sent > ps.failed / 2 THEN 'generator'  -- missed / unsent: simd's side
            ELSE 'target' END AS bound
FROM phase_stats ps
CROSS JOIN runs r
LEFT JOIN j USING (phase_index)
ORDER BY ps.phase_index;

-- ---------------------------------------------------------------- commands
-- Per commander group: its commands (one `command` row each, simd/transports/mqtt/commands.py),
-- how many reached a listening device (its receive row), were answered (a reply came back) or
-- timed out, and the round trip from the command's intended send time to the reply's arrival.
CREATE OR REPLACE VIEW command_stats AS
WITH got AS (
    SELECT DISTINCT device, seq FROM event_rows WHERE kind = kind_code('receive') AND message = 254
)
SELECT g.group_name, count(*) AS commands,
       count(got.seq) AS delivered,
       count(*) FILTER (WHERE c.status = status_code('acked')) AS answered,
       count(*) FILTER (WHERE c.status = status_code('timeout')) AS timed_out,
       quantile_cont(c.t_done_ns - c.t_intended_ns, 0.5) FILTER (WHERE c.status = status_code('acked')) AS rtt_p50_ns,
       quantile_cont(c.t_done_ns - c.t_intended_ns, 0.99) FILTER (WHERE c.status = status_code('acked')) AS rtt_p99_ns,
       max(c.t_done_ns - c.t_intended_ns) FILTER (WHERE c.status = status_code('acked')) AS rtt_max_ns
FROM event_rows c
JOIN devices d ON d.device = c.device
JOIN groups g ON g.group_index = d.group_index
LEFT JOIN got ON got.device = c.device AND got.seq = c.seq
WHERE c.kind = kind_code('command')
GROUP BY ALL
ORDER BY 1;
