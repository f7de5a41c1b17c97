-- simd results: views. Every report, check and query is a SELECT over these.
-- Times are virtual ns since the run's t=0. Latency "from intended" counts the time a publish
-- waited to be sent (coordinated omission shows); "from sent" is the target's own share.

CREATE OR REPLACE VIEW kind_names AS
SELECT * FROM (VALUES (0, 'publish'), (1, 'connect'), (2, 'disconnect'), (3, 'receive'), (4, 'error'))
    AS t(code, name);
CREATE OR REPLACE VIEW status_names AS
SELECT * FROM (VALUES (0, 'acked'), (1, 'sent'), (2, 'timeout'), (3, 'error'), (4, 'dropped'),
                      (5, 'missed'), (6, 'unsent'), (7, 'ok')) AS t(code, name);

-- one row per logged event, with names (the contract of DESIGN.md)
CREATE OR REPLACE VIEW events AS
SELECT
    d.worker,
    CASE WHEN r.device < 0 THEN NULL ELSE r.device END::BIGINT AS device,
    d.device_id,
    g.group_name,
    p.phase,
    CASE WHEN r.seq < 0 THEN NULL ELSE r.seq END::BIGINT AS seq,
    (['publish', 'connect', 'disconnect', 'receive', 'error'])[r.kind + 1] AS kind,
    (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[r.status + 1] AS status,
    CASE WHEN r.kind = 0 THEN m.message_name END AS message,
    r.t_intended_ns, r.t_sent_ns, r.t_done_ns,
    r.bytes::INTEGER AS bytes,
    CASE WHEN r.kind = 0 THEN m.qos END::TINYINT AS qos,
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
    count(*) FILTER (WHERE status NOT IN (5, 6)) AS sent,
    count(*) FILTER (WHERE status IN (0, 1)) AS completed,
    count(*) FILTER (WHERE status = 0) AS acked,
    count(*) FILTER (WHERE status IN (2, 3, 4, 5, 6)) AS failed,
    sum(bytes)::BIGINT AS bytes,
    quantile_cont(t_done_ns - t_intended_ns, 0.99) FILTER (WHERE status IN (0, 1)) AS latency_p99_ns,
    max(t_sent_ns - t_intended_ns) FILTER (WHERE status NOT IN (5, 6)) AS lag_max_ns
FROM event_rows
WHERE kind = 0
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
           sum(count) FILTER (WHERE status = 0) AS acked,
           sum(count) FILTER (WHERE status = 1) AS sent,
           sum(count) FILTER (WHERE status = 2) AS timeout,
           sum(count) FILTER (WHERE status = 3) AS error,
           sum(count) FILTER (WHERE status = 4) AS dropped,
           sum(count) FILTER (WHERE status = 5) AS missed,
           sum(count) FILTER (WHERE status = 6) AS unsent
    FROM status_totals WHERE kind = 0 GROUP BY grp, phase
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
WITH f AS (SELECT * FROM event_rows WHERE status IN (2, 3, 4, 5, 6))
SELECT (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[f.status + 1] AS status,
       (['publish', 'connect', 'disconnect', 'receive', 'error'])[f.kind + 1] AS kind,
       coalesce(e.text, '') AS error, count(*) AS count,
       min(f.t_sent_ns) AS first_ns, max(f.t_sent_ns) AS last_ns
FROM f
LEFT JOIN devices d ON d.device = f.device
LEFT JOIN error_texts e ON e.worker = d.worker AND e.code = f.error
GROUP BY ALL
ORDER BY count DESC;

CREATE OR REPLACE VIEW device_stats AS
SELECT r.device, d.device_id, g.group_name,
       count(*) AS publishes,
       count(*) FILTER (WHERE status IN (0, 1)) AS completed,
       count(*) FILTER (WHERE status IN (2, 3, 4, 5, 6)) AS failed,
       max(seq) AS last_seq,
       avg(t_done_ns - t_intended_ns) FILTER (WHERE status IN (0, 1)) AS mean_latency_ns,
       sum(bytes)::BIGINT AS bytes
FROM event_rows r
LEFT JOIN devices d ON d.device = r.device
LEFT JOIN groups g ON g.group_index = d.group_index
WHERE r.kind = 0
GROUP BY ALL
ORDER BY r.device;

-- the whole run in one row: what SLOs are checked against
CREATE OR REPLACE VIEW run_summary AS
WITH c AS (
    SELECT coalesce(sum(count), 0)::BIGINT AS logged,
           coalesce(sum(count) FILTER (WHERE status IN (0, 1)), 0)::BIGINT AS completed,
           coalesce(sum(count) FILTER (WHERE status IN (2, 3, 4, 5, 6)), 0)::BIGINT AS failed
    FROM status_totals WHERE kind = 0
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

CREATE OR REPLACE VIEW slo_results AS
WITH observed AS (
    UNPIVOT (
        SELECT latency_p50_ns::DOUBLE AS latency_p50, latency_p90_ns::DOUBLE AS latency_p90,
               latency_p99_ns::DOUBLE AS latency_p99, latency_p999_ns::DOUBLE AS latency_p999,
               error_rate::DOUBLE AS error_rate, throughput_ratio::DOUBLE AS throughput_ratio,
               schedule_lag_p99_ns::DOUBLE AS schedule_lag_p99
        FROM run_summary
    ) ON COLUMNS(*) INTO NAME name VALUE observed
)
SELECT s.name, s.unit, s.threshold, o.observed,
       CASE WHEN o.observed IS NULL THEN FALSE
            WHEN s.higher_is_better THEN o.observed >= s.threshold
            ELSE o.observed <= s.threshold END AS passed,
       o.observed - s.threshold AS margin
FROM slo s
LEFT JOIN observed o ON o.name = s.name
ORDER BY s.name;

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
WHERE r.kind = 3
GROUP BY ALL
ORDER BY 1;
