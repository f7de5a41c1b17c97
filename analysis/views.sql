-- simd results: views. Every report, check and query is a SELECT over these.
-- Times are virtual ns since the run's t=0. Latency "from intended" counts the time a publish
-- waited to be sent (coordinated omission shows); "from sent" is the target's own share.

CREATE OR REPLACE VIEW kind_names AS
SELECT * FROM (VALUES (0, 'publish'), (1, 'connect'), (2, 'disconnect'), (3, 'receive'), (4, 'error'))
    AS t(code, name);
CREATE OR REPLACE VIEW status_names AS
SELECT * FROM (VALUES (0, 'acked'), (1, 'sent'), (2, 'timeout'), (3, 'error'), (4, 'dropped'),
                      (5, 'missed'), (6, 'unsent'), (7, 'ok')) AS t(code, name);

CREATE OR REPLACE VIEW events AS
SELECT
    r.worker::INTEGER AS worker,
    CASE WHEN r.device < 0 THEN NULL ELSE r.device END::BIGINT AS device,
    d.device_id,
    g.group_name,
    p.phase,
    CASE WHEN r.seq < 0 THEN NULL ELSE r.seq END::BIGINT AS seq,
    (['publish', 'connect', 'disconnect', 'receive', 'error'])[r.kind + 1] AS kind,
    (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[r.status + 1] AS status,
    m.message_name AS message,
    r.t_intended_ns, r.t_sent_ns, r.t_done_ns,
    r.bytes::INTEGER AS bytes,
    r.qos::TINYINT AS qos,
    e.text AS error
FROM event_rows r
LEFT JOIN devices d ON d.device = r.device
LEFT JOIN groups g ON g.group_index = r.grp
LEFT JOIN phases p ON p.phase_index = r.phase
LEFT JOIN messages m ON m.group_index = r.grp AND m.message = r.message AND r.kind = 0
LEFT JOIN error_texts e ON e.worker = r.worker AND e.code = r.error AND r.error > 0;

-- publish rows with their group and phase names and both latencies (NULL where not completed)
CREATE OR REPLACE VIEW publishes AS
SELECT
    r.*, g.group_name, p.phase AS phase_name,
    CASE WHEN r.status IN (0, 1) THEN r.t_done_ns - r.t_intended_ns END AS latency_intended_ns,
    CASE WHEN r.status IN (0, 1) THEN r.t_done_ns - r.t_sent_ns END AS latency_sent_ns,
    r.t_sent_ns - r.t_intended_ns AS lag_ns
FROM event_rows r
LEFT JOIN groups g ON g.group_index = r.grp
LEFT JOIN phases p ON p.phase_index = r.phase
WHERE r.kind = 0;

-- per second of intended time: planned-by-schedule, sent, completed, errors, bytes
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

-- latency percentiles per group and phase (and the whole run as group '*', phase '*')
CREATE OR REPLACE VIEW latency_percentiles AS
WITH q AS (
    SELECT
        grp, phase,
        count(*) AS completed,
        quantile_cont(t_done_ns - t_intended_ns, [0.5, 0.9, 0.99, 0.999]) AS qi,
        max(t_done_ns - t_intended_ns) AS max_i,
        quantile_cont(t_done_ns - t_sent_ns, [0.5, 0.9, 0.99, 0.999]) AS qs,
        max(t_done_ns - t_sent_ns) AS max_s
    FROM event_rows
    WHERE kind = 0 AND status IN (0, 1)
    GROUP BY GROUPING SETS ((grp, phase), ())
)
SELECT
    coalesce(g.group_name, '*') AS group_name,
    coalesce(p.phase, '*') AS phase,
    completed,
    qi[1] AS p50_intended_ns, qi[2] AS p90_intended_ns, qi[3] AS p99_intended_ns,
    qi[4] AS p999_intended_ns, max_i AS max_intended_ns,
    qs[1] AS p50_sent_ns, qs[2] AS p90_sent_ns, qs[3] AS p99_sent_ns,
    qs[4] AS p999_sent_ns, max_s AS max_sent_ns
FROM q
LEFT JOIN groups g ON g.group_index = q.grp
LEFT JOIN phases p ON p.phase_index = q.phase
ORDER BY (q.grp IS NULL), q.grp, q.phase;

-- how late publishes left the generator, per group and phase (and '*' for the run)
CREATE OR REPLACE VIEW schedule_lag AS
WITH q AS (
    SELECT grp, phase, count(*) AS sent,
           quantile_cont(t_sent_ns - t_intended_ns, [0.5, 0.99]) AS ql,
           max(t_sent_ns - t_intended_ns) AS max_lag
    FROM event_rows
    WHERE kind = 0 AND status NOT IN (5, 6)
    GROUP BY GROUPING SETS ((grp, phase), ())
)
SELECT coalesce(g.group_name, '*') AS group_name, coalesce(p.phase, '*') AS phase, sent,
       ql[1] AS lag_p50_ns, ql[2] AS lag_p99_ns, max_lag AS lag_max_ns
FROM q
LEFT JOIN groups g ON g.group_index = q.grp
LEFT JOIN phases p ON p.phase_index = q.phase
ORDER BY (q.grp IS NULL), q.grp, q.phase;

-- publish rows by final status per group and phase, against the plan
CREATE OR REPLACE VIEW status_counts AS
WITH c AS (
    SELECT grp, phase,
           count(*) AS logged,
           count(*) FILTER (WHERE status = 0) AS acked,
           count(*) FILTER (WHERE status = 1) AS sent,
           count(*) FILTER (WHERE status = 2) AS timeout,
           count(*) FILTER (WHERE status = 3) AS error,
           count(*) FILTER (WHERE status = 4) AS dropped,
           count(*) FILTER (WHERE status = 5) AS missed,
           count(*) FILTER (WHERE status = 6) AS unsent
    FROM event_rows WHERE kind = 0 GROUP BY grp, phase
)
SELECT g.group_name, p.phase, pl.publishes AS planned, coalesce(c.logged, 0) AS logged,
       coalesce(acked, 0) AS acked, coalesce(sent, 0) AS sent, coalesce(timeout, 0) AS timeout,
       coalesce(error, 0) AS error, coalesce(dropped, 0) AS dropped,
       coalesce(missed, 0) AS missed, coalesce(unsent, 0) AS unsent
FROM planned pl
JOIN groups g ON g.group_name = pl.group_name
JOIN phases p ON p.phase = pl.phase
LEFT JOIN c ON c.grp = g.group_index AND c.phase = p.phase_index
ORDER BY g.group_index, p.phase_index;

CREATE OR REPLACE VIEW errors_by_kind AS
SELECT (['acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent', 'ok'])[r.status + 1] AS status,
       (['publish', 'connect', 'disconnect', 'receive', 'error'])[r.kind + 1] AS kind,
       coalesce(e.text, '') AS error, count(*) AS count,
       min(r.t_sent_ns) AS first_ns, max(r.t_sent_ns) AS last_ns
FROM event_rows r
LEFT JOIN error_texts e ON e.worker = r.worker AND e.code = r.error
WHERE r.status IN (2, 3, 4, 5, 6)
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
LEFT JOIN groups g ON g.group_index = r.grp
WHERE r.kind = 0
GROUP BY ALL
ORDER BY r.device;

-- the whole run in one row: what SLOs are checked against
CREATE OR REPLACE VIEW run_summary AS
WITH p AS (SELECT * FROM event_rows WHERE kind = 0),
c AS (
    SELECT count(*) AS logged,
           count(*) FILTER (WHERE status IN (0, 1)) AS completed,
           count(*) FILTER (WHERE status IN (2, 3, 4, 5, 6)) AS failed,
           min(t_sent_ns) AS first_sent_ns, max(t_sent_ns) AS last_sent_ns
    FROM p
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
