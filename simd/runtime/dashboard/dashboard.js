// simd's live dashboard: polls api/dashboard once a second, keeps every point of the run so
// far (a page opened mid-run fetches them all first), draws them with uPlot and fills the
// tables. Everything it shows is text set with textContent: error texts come from peers.
"use strict";

(function () {
  const API = "api/dashboard"; // relative: the daemon serves a run's page under its own path
  const EVERY_MS = 1000;
  const ENDED = new Set(["completed", "stopped", "aborted", "failed", "done"]);
  const COLORS = ["#4a7bd0", "#2a9d4a", "#d08a2a", "#c0392b", "#8e44ad", "#16a085", "#7f8c8d"];

  const view = { epoch: -1, fields: [], points: [], charts: {}, slo: {}, phases: [], ended: false };
  window.simdDashboard = view; // read by the tests, handy in a console

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmt(v, digits) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    if (digits !== undefined) return v.toFixed(digits);
    return Math.round(v).toLocaleString("en-US");
  }

  function column(name) {
    const i = view.fields.indexOf(name);
    return view.points.map(function (p) { return i < 0 ? null : p[i]; });
  }

  // ------------------------------------------------------------------ charts

  function markers(u) {
    // phase starts as dashed verticals, SLO thresholds as red horizontals
    const ctx = u.ctx;
    ctx.save();
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 4]);
    ctx.strokeStyle = "#999";
    ctx.fillStyle = "#666";
    ctx.font = "11px sans-serif";
    view.phases.forEach(function (ph) {
      if (ph.start_s <= 0) return;
      const x = u.valToPos(ph.start_s, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.fillText(ph.name, x + 3, u.bbox.top + 12);
    });
    const limit = u.simdLimit;
    if (limit !== undefined && limit !== null) {
      const y = u.valToPos(limit, "y", true);
      if (y >= u.bbox.top && y <= u.bbox.top + u.bbox.height) {
        ctx.strokeStyle = "#c0392b";
        ctx.beginPath();
        ctx.moveTo(u.bbox.left, y);
        ctx.lineTo(u.bbox.left + u.bbox.width, y);
        ctx.stroke();
        ctx.fillStyle = "#c0392b";
        ctx.fillText("SLO " + fmt(limit, 1), u.bbox.left + 4, y - 3);
      }
    }
    ctx.restore();
  }

  function chart(id, names, keys, limit, second) {
    // `second`: the index of the first series drawn on a right-hand axis of its own
    const box = $(id);
    const axes = [{ label: "run time (s)" }, {}];
    if (second !== undefined) axes.push({ scale: "right", side: 1, grid: { show: false } });
    const opts = {
      width: Math.max(320, box.clientWidth || 560),
      height: 220,
      scales: { x: { time: false } },
      axes: axes,
      series: [{ label: "t (s)" }].concat(names.map(function (n, i) {
        const s = { label: n, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false };
        if (second !== undefined && i >= second) s.scale = "right";
        return s;
      })),
      hooks: { draw: [markers] },
      legend: { live: true },
    };
    const u = new uPlot(opts, [[]].concat(names.map(function () { return []; })), box);
    u.simdLimit = limit;
    view.charts[id] = { u: u, keys: keys };
  }

  function makeCharts(noun) {
    const ms = function (name) {
      const s = view.slo[name];
      return s ? s.threshold / 1e6 : null;
    };
    $("rates-title").textContent = noun + " per second";
    $("errors-title").textContent = "failed " + noun + " per second by status";
    chart("chart-rates", ["planned", "sent", "completed", "failed"],
      ["planned_per_s", "sent_per_s", "completed_per_s", "failed_per_s"]);
    chart("chart-latency", ["p50", "p95", "p99", "max", "p99 from sent"],
      ["p50_ms", "p95_ms", "p99_ms", "max_ms", "sent_p99_ms"], ms("latency_p99"));
    chart("chart-lag", ["lag p99"], ["lag_p99_ms"], ms("schedule_lag_p99"));
    chart("chart-errors", ["timeout", "error", "dropped", "missed", "unsent"],
      ["timeout_per_s", "error_per_s", "dropped_per_s", "missed_per_s", "unsent_per_s"]);
    chart("chart-workers", ["workers up", "RSS MiB (right)"], ["workers_up", "rss_mib"], null, 1);
  }

  function drawCharts() {
    const xs = column("t_s");
    Object.keys(view.charts).forEach(function (id) {
      const c = view.charts[id];
      c.u.setData([xs].concat(c.keys.map(column)));
    });
  }

  // ------------------------------------------------------------------ tables

  function table(id, headers, rows, emptyText) {
    const box = $(id);
    box.replaceChildren();
    if (!rows.length) {
      box.appendChild(el("p", emptyText || "nothing yet", "empty"));
      return;
    }
    const t = el("table");
    t.id = id + "-table";
    const head = el("tr");
    headers.forEach(function (h, i) { head.appendChild(el("th", h, i === 0 || h.left ? "l" : "")); });
    t.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    rows.forEach(function (r) {
      const tr = el("tr");
      r.forEach(function (cell, i) {
        const c = cell !== null && typeof cell === "object" ? cell : { v: cell };
        tr.appendChild(el("td", c.v, (c.left || (i === 0 && typeof c.v === "string") ? "l " : "") + (c.cls || "")));
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    box.appendChild(t);
  }

  function left(v) { return { v: v, left: true }; }

  function fillTables(s) {
    const slos = Object.keys(view.slo).map(function (name) {
      const lim = view.slo[name];
      const active = s.alerts.find(function (a) { return a.slo === name && a.active; });
      const any = s.alerts.filter(function (a) { return a.slo === name; }).length;
      const shown = lim.unit === "ns" ? fmt(lim.threshold / 1e6, 2) + " ms" : fmt(lim.threshold, 4);
      return [left(name), shown,
        active ? { v: "breached since " + fmt(active.since_s, 1) + " s", cls: "bad" }
               : { v: "holding", cls: "ok" },
        any];
    });
    table("slos", ["slo", "threshold", "now (last 5 s)", "breaches"], slos, "no live-judged SLO");
    table("groups", ["group", "sent", "completed", "errors"], s.groups.map(function (g) {
      return [left(g.name), fmt(g.sent), fmt(g.completed), fmt(g.errors)];
    }));
    table("phases", ["phase", "from (s)", "to (s)", "sent", "completed", "errors"],
      s.phases.map(function (p) {
        return [left(p.name), fmt(p.start_s, 1), fmt(p.end_s, 1), fmt(p.sent), fmt(p.completed), fmt(p.errors)];
      }));
    table("messages", ["group", view.http ? "request" : "message", "sent", "completed", "errors", "mean latency (ms)"],
      s.messages.map(function (m) {
        return [left(m.group), left(m.name), fmt(m.sent), fmt(m.completed), fmt(m.errors), fmt(m.latency_mean_ms, 2)];
      }));
    table("errors", ["error", "rows"], s.top_errors.map(function (e) {
      return [left(e.text), fmt(e.count)];
    }), "no failed " + (view.http ? "requests" : "publishes"));
    table("other", ["kind", "status", "rows"], (s.other_rows || []).map(function (r) {
      return [left(r.kind), left(r.status), fmt(r.count)];
    }), "none yet");
    table("workers", ["worker", "state", "pid", "restarts", "run time (s)", "sent", "errors", "RSS (MiB)", "last progress (s ago)"],
      s.workers.map(function (w) {
        return [w.worker, left(w.state), w.pid === null ? "-" : w.pid, w.restarts, fmt(w.t_s, 1), fmt(w.sent),
          fmt(w.errors), fmt(w.rss_bytes / 1048576, 1),
          w.seconds_since_progress === null ? "-" : fmt(w.seconds_since_progress, 1)];
      }));
  }

  // ------------------------------------------------------------------ header

  function figure(box, id, value, label) {
    const f = el("div", null, "figure");
    f.id = id;
    f.appendChild(el("b", value));
    f.appendChild(el("span", label));
    box.appendChild(f);
  }

  function fillHeader(d) {
    const s = d.status;
    const noun = view.http ? "requests" : "publishes";
    document.title = "simd: " + s.scenario + " (" + s.run_id + ")";
    $("title").textContent = s.scenario + " — " + s.run_id + (s.shard ? " (shard " + s.shard + ")" : "");
    const st = $("state");
    st.textContent = s.state;
    st.className = "state " + s.state;
    $("meta").textContent = "target " + (d.target || "?") + " · " + fmt(s.elapsed_s, 1) + " s of " +
      fmt(s.duration_s, 0) + " s · " + s.workers.length + " worker(s)";
    $("progress-bar").style.width = Math.min(100, 100 * s.elapsed_s / (s.duration_s || 1)) + "%";
    const box = $("figures");
    box.replaceChildren();
    const iv = s.interval;
    figure(box, "fig-planned", fmt(s.planned_so_far), "planned so far of " + fmt(s.planned_total));
    figure(box, "fig-sent", fmt(s.sent), noun + " sent");
    figure(box, "fig-completed", fmt(s.completed), "completed");
    figure(box, "fig-errors", fmt(s.errors), "failed");
    figure(box, "fig-rate", fmt(iv.completed_per_s), "completed/s (last " + fmt(iv.seconds, 0) + " s)");
    const over = d.finished ? " (whole run)" : " (last interval)";
    figure(box, "fig-p99", fmt(iv.latency_p99_ms, 2), "latency p99 ms" + over);
    figure(box, "fig-lag", fmt(iv.lag_p99_ms, 2), "schedule lag p99 ms" + over);
    const banner = $("banner");
    if (d.finished) {
      banner.hidden = false;
      banner.textContent = "A finished run (" + s.state + "), read from its results.duckdb: " +
        fmt(s.sent) + " of " + fmt(s.planned_total) + " planned " + noun + " sent, " +
        fmt(s.completed) + " completed; the charts are the report's windows.";
    } else if (ENDED.has(s.state)) {
      banner.hidden = false;
      banner.textContent = "The run has ended (" + s.state + "): " + fmt(s.sent) + " of " +
        fmt(s.planned_total) + " planned " + noun + " sent, " + fmt(s.completed) + " completed. " +
        "Its report (report.html, simd report) is read from the log.";
    } else {
      const restarting = s.workers.filter(function (w) { return w.state === "restarting"; });
      banner.hidden = restarting.length === 0;
      banner.textContent = restarting.length ? "worker " + restarting.map(function (w) { return w.worker; }).join(", ") +
        " restarting from its log; counts resume when it reports" : "";
    }
  }

  // ------------------------------------------------------------------ the loop

  function apply(d) {
    if (d.epoch !== view.epoch) view.points = [];
    view.epoch = d.epoch;
    view.fields = d.fields;
    view.points = view.points.slice(0, d.start).concat(d.points);
    view.phases = d.status.phases;
    view.slo = d.slo || {};
    view.http = (d.target || "").indexOf("http") === 0;
    view.status = d.status;
    if (!Object.keys(view.charts).length) makeCharts(view.http ? "requests" : "publishes");
    fillHeader(d);
    drawCharts();
    fillTables(d.status);
    view.ended = ENDED.has(d.status.state) || d.finished === true;
    view.updates = (view.updates || 0) + 1;
  }

  function poll() {
    const url = API + "?start=" + view.points.length + "&epoch=" + view.epoch;
    fetch(url, { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (d) {
        if (d.pending) { // the daemon's run that has not served numbers yet
          $("state").textContent = "starting";
          setTimeout(poll, EVERY_MS);
          return;
        }
        apply(d);
        view.lost = false;
        if (!view.ended) setTimeout(poll, EVERY_MS);
      })
      .catch(function (e) {
        view.lost = true;
        const st = $("state");
        st.textContent = "gone";
        st.className = "state gone";
        const banner = $("banner");
        banner.hidden = false;
        banner.textContent = "No answer from the run (" + e.message + "); trying again.";
        setTimeout(poll, 5 * EVERY_MS);
      });
  }

  poll();
})();
