/// `GET /`: the live dashboard, self-contained (no CDN, no external fonts): an HTML page, its script and
/// its style sheet, served by the server itself or by `nova-cache dashboard`. The script polls
/// `/api/stats` once a second and draws its charts as SVG; data from the server (slow log arguments,
/// key names) is only ever set as text, never as markup.
package enum DashboardPage {
    /// Headers for the page: scripts and styles only from this origin, no framing.
    package static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]

    package static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>NovaCache dashboard</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="dashboard.css">
        <script src="dashboard.js" defer></script>
        </head>
        <body>
        <header>
          <h1>NovaCache</h1>
          <span id="server">connecting…</span>
          <span id="state" class="state">waiting for data</span>
        </header>
        <section id="alerts" class="alerts" hidden>
          <strong>Alerts firing</strong>
          <ul id="alert-list"></ul>
        </section>
        <main>
          <section class="tiles">
            <div class="tile"><h2>Operations / s</h2><p id="ops" class="big">–</p><p id="commands" class="sub"></p></div>
            <div class="tile"><h2>Hit ratio</h2><p id="hit-ratio" class="big">–</p><p id="hits" class="sub"></p></div>
            <div class="tile"><h2>Memory used</h2><p id="memory" class="big">–</p>
              <div class="bar" title="used memory against maxmemory; the line marks the alert level"><div id="memory-fill" class="fill"></div><div id="memory-alert" class="mark" hidden></div></div>
              <p id="memory-sub" class="sub"></p></div>
            <div class="tile"><h2>Clients</h2><p id="clients" class="big">–</p><p id="clients-sub" class="sub"></p></div>
            <div class="tile"><h2>Keys</h2><p id="keys" class="big">–</p><p id="keys-sub" class="sub"></p></div>
            <div class="tile"><h2>Expired / evicted per s</h2><p id="churn" class="big">–</p><p id="churn-sub" class="sub"></p></div>
          </section>
          <section class="charts">
            <figure><figcaption>Operations per second <span class="scale" id="chart-ops-scale"></span></figcaption><svg id="chart-ops" class="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="operations per second"></svg></figure>
            <figure><figcaption>Hit ratio per interval <span class="scale" id="chart-hits-scale"></span></figcaption><svg id="chart-hits" class="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="hit ratio"></svg></figure>
            <figure><figcaption>Memory used <span class="scale" id="chart-memory-scale"></span> <span class="legend"><i class="max"></i>maxmemory <i class="alert"></i>alert level</span></figcaption><svg id="chart-memory" class="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="memory used"></svg></figure>
          </section>
          <section class="tables">
            <div><h2>Keyspace</h2><table><thead><tr><th>db</th><th>keys</th><th>expiring</th><th>avg TTL</th></tr></thead><tbody id="keyspace"></tbody></table></div>
            <div><h2>Command latency (microseconds)</h2><table><thead><tr><th>command</th><th>calls</th><th>p50</th><th>p99</th><th>p99.9</th></tr></thead><tbody id="latency"></tbody></table></div>
            <div><h2>Persistence</h2><table><tbody id="persistence"></tbody></table></div>
            <div class="wide"><h2>Slow log <span id="slowlog-len" class="sub"></span></h2><table><thead><tr><th>id</th><th>time</th><th>duration (µs)</th><th>command</th><th>client</th></tr></thead><tbody id="slowlog"></tbody></table></div>
          </section>
        </main>
        </body>
        </html>

        """

    package static let style = """
        :root { --bg: #f6f7f9; --card: #fff; --ink: #1d2430; --muted: #667085; --line: #2563eb; --ok: #16a34a; --bad: #dc2626; --warn: #d97706; --grid: #e5e7eb; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
        header { display: flex; gap: 1rem; align-items: baseline; padding: .8rem 1.2rem; background: #111827; color: #f9fafb; }
        header h1 { font-size: 1.2rem; margin: 0; }
        header #server { color: #cbd5e1; }
        .state { margin-left: auto; font-size: .85rem; color: #cbd5e1; }
        .state.down { color: #fca5a5; }
        .alerts { background: var(--bad); color: #fff; padding: .6rem 1.2rem; }
        .alerts ul { margin: .3rem 0 0; padding-left: 1.2rem; }
        main { padding: 1rem 1.2rem; display: grid; gap: 1rem; }
        .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: .8rem; }
        .tile, figure, .tables > div { background: var(--card); border-radius: 8px; padding: .7rem .9rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); margin: 0; }
        h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 .3rem; font-weight: 600; }
        .big { font-size: 1.7rem; font-weight: 600; margin: 0; font-variant-numeric: tabular-nums; }
        .sub { color: var(--muted); margin: .2rem 0 0; font-size: .85rem; }
        .bar { position: relative; height: 8px; background: var(--grid); border-radius: 4px; margin-top: .4rem; overflow: hidden; }
        .fill { height: 100%; width: 0; background: var(--ok); transition: width .3s; }
        .fill.high { background: var(--bad); }
        .mark { position: absolute; top: 0; bottom: 0; width: 3px; background: var(--ink); }
        .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: .8rem; }
        figcaption { font-size: .8rem; color: var(--muted); margin-bottom: .3rem; }
        .legend i { display: inline-block; width: 14px; height: 0; border-top: 2px dashed; margin: 0 .25rem 0 .6rem; vertical-align: middle; }
        .legend i.max { color: var(--muted); } .legend i.alert { color: var(--warn); }
        .chart { width: 100%; height: 160px; display: block; }
        .chart .area { fill: rgba(37, 99, 235, .12); stroke: none; }
        .chart .line { fill: none; stroke: var(--line); stroke-width: 2; vector-effect: non-scaling-stroke; }
        .chart .grid { stroke: var(--grid); stroke-width: 1; vector-effect: non-scaling-stroke; }
        .chart .limit { stroke: var(--muted); stroke-dasharray: 6 4; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
        .chart .alert-level { stroke: var(--warn); stroke-dasharray: 6 4; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
        .scale { float: right; font-variant-numeric: tabular-nums; }
        .tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: .8rem; }
        .tables .wide { grid-column: 1 / -1; }
        table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
        th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid var(--grid); vertical-align: top; }
        th { color: var(--muted); font-weight: 600; font-size: .8rem; }
        td.command { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
        .status-ok { color: var(--ok); } .status-err { color: var(--bad); font-weight: 600; }

        """

    package static let script = #"""
        "use strict";
        (function () {
          const HISTORY = 300; // samples kept for the charts (five minutes at one per second)
          const FIRST_WINDOW = 60; // a new page fills its charts over the first minute, then scrolls
          const series = { ops: [], hits: [], memory: [] };
          let previous = null;
          let updates = 0;
          const $ = (id) => document.getElementById(id);

          function human(bytes) {
            const units = ["B", "K", "M", "G", "T"];
            let value = bytes, unit = 0;
            while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
            return unit === 0 ? bytes + "B" : value.toFixed(2) + units[unit];
          }
          function count(n) { return Math.round(n).toLocaleString("en-US"); }
          function duration(seconds) {
            if (seconds >= 86400) return Math.floor(seconds / 86400) + "d " + Math.floor(seconds % 86400 / 3600) + "h";
            if (seconds >= 3600) return Math.floor(seconds / 3600) + "h " + Math.floor(seconds % 3600 / 60) + "m";
            if (seconds >= 60) return Math.floor(seconds / 60) + "m " + (seconds % 60) + "s";
            return seconds + "s";
          }
          function push(list, value) { list.push(value); if (list.length > HISTORY) list.shift(); }
          function text(id, value) { $(id).textContent = value; }
          function row(cells, classes) {
            const tr = document.createElement("tr");
            cells.forEach((cell, i) => {
              const td = document.createElement("td");
              td.textContent = cell;
              if (classes && classes[i]) td.className = classes[i];
              tr.appendChild(td);
            });
            return tr;
          }
          function fill(id, rows, empty) {
            const body = $(id);
            body.replaceChildren(...rows);
            if (rows.length === 0) body.appendChild(row([empty]));
          }
          const SVG = "http://www.w3.org/2000/svg";
          function node(name, attributes) {
            const element = document.createElementNS(SVG, name);
            for (const key in attributes) element.setAttribute(key, attributes[key]);
            return element;
          }
          // Draws `values` (null: a gap) into the SVG `id`; `lines` are horizontal markers {value, cls}.
          function chart(id, values, options) {
            const svg = $(id), width = 600, height = 160, top = 14, bottom = 4;
            const markers = (options.lines || []).filter((l) => l.value > 0);
            let max = options.max || 0;
            for (const v of values) if (v !== null && v > max) max = v;
            for (const l of markers) if (l.value > max) max = l.value;
            if (max <= 0) max = 1;
            const y = (v) => top + (height - top - bottom) * (1 - v / max);
            const span = Math.min(HISTORY, Math.max(FIRST_WINDOW, values.length));
            const x = (i) => width * (i + span - values.length) / (span - 1);
            const children = [];
            for (let g = 1; g <= 3; g++) children.push(node("line", { x1: 0, x2: width, y1: y(max * g / 4), y2: y(max * g / 4), class: "grid" }));
            let path = "", area = "", start = null;
            values.forEach((v, i) => {
              if (v === null) { if (start !== null) { area += "L" + x(i - 1) + "," + y(0) + "Z"; start = null; } return; }
              const point = x(i).toFixed(1) + "," + y(v).toFixed(1);
              if (start === null) { path += "M" + point; area += "M" + x(i).toFixed(1) + "," + y(0) + "L" + point; start = i; }
              else { path += "L" + point; area += "L" + point; }
            });
            if (start !== null) area += "L" + x(values.length - 1).toFixed(1) + "," + y(0) + "Z";
            children.push(node("path", { d: area, class: "area" }));
            children.push(node("path", { d: path, class: "line" }));
            for (const l of markers) children.push(node("line", { x1: 0, x2: width, y1: y(l.value), y2: y(l.value), class: l.cls }));
            $(id + "-scale").textContent = "top " + options.format(max);
            svg.replaceChildren(...children);
            svg.dataset.points = String(values.length);
          }

          function render(stats) {
            const seconds = previous ? Math.max(stats.time - previous.time, 0.001) : null;
            const rate = (field) => previous && stats[field] >= previous[field] ? (stats[field] - previous[field]) / seconds : null;
            const ops = rate("commands_processed");
            const hitDelta = previous ? stats.keyspace_hits - previous.keyspace_hits : 0;
            const missDelta = previous ? stats.keyspace_misses - previous.keyspace_misses : 0;
            const lookups = hitDelta + missDelta;
            const intervalRatio = previous && lookups > 0 && hitDelta >= 0 && missDelta >= 0 ? 100 * hitDelta / lookups : null;
            const totalLookups = stats.keyspace_hits + stats.keyspace_misses;
            const lifetimeRatio = totalLookups > 0 ? 100 * stats.keyspace_hits / totalLookups : null;

            const s = stats.server;
            text("server", "Redis " + s.version + (s.nova_cache_version ? " · NovaCache " + s.nova_cache_version : "") + " · " + s.role + " · port " + s.port + " · up " + duration(s.uptime_seconds));
            text("ops", ops === null ? count(stats.ops_per_sec) : count(ops));
            text("commands", count(stats.commands_processed) + " commands in all");
            text("hit-ratio", intervalRatio !== null ? intervalRatio.toFixed(1) + "%" : (lifetimeRatio !== null ? lifetimeRatio.toFixed(1) + "%" : "–"));
            text("hits", count(stats.keyspace_hits) + " hits, " + count(stats.keyspace_misses) + " misses" + (lifetimeRatio !== null ? " (" + lifetimeRatio.toFixed(1) + "% since start)" : ""));
            const m = stats.memory;
            text("memory", human(m.used));
            const share = m.max > 0 ? m.used / m.max : null;
            const fillBar = $("memory-fill");
            fillBar.style.width = share === null ? "0" : Math.min(100, share * 100).toFixed(1) + "%";
            fillBar.classList.toggle("high", m.alert_level !== null && m.used >= m.alert_level);
            const mark = $("memory-alert");
            mark.hidden = !(m.alert_level !== null && m.max > 0);
            if (!mark.hidden) mark.style.left = Math.min(100, 100 * m.alert_level / m.max).toFixed(1) + "%";
            text("memory-sub", (m.max > 0 ? "of " + human(m.max) + " (" + (share * 100).toFixed(0) + "%), " : "no maxmemory, ") + "RSS " + human(m.rss) + ", peak " + human(m.peak) + (m.alert_level !== null ? ", alert at " + human(m.alert_level) : ""));
            text("clients", count(stats.clients.connected));
            text("clients-sub", stats.clients.blocked + " blocked, max " + count(stats.clients.max) + ", " + count(stats.clients.rejected) + " rejected");
            const keys = stats.databases.reduce((sum, d) => sum + d.keys, 0);
            const expiring = stats.databases.reduce((sum, d) => sum + d.expires, 0);
            text("keys", count(keys));
            text("keys-sub", count(expiring) + " with a TTL, in " + stats.databases.length + " database" + (stats.databases.length === 1 ? "" : "s"));
            const expired = rate("expired_keys"), evicted = rate("evicted_keys");
            text("churn", expired === null ? "–" : count(expired) + " / " + count(evicted));
            text("churn-sub", count(stats.expired_keys) + " expired, " + count(stats.evicted_keys) + " evicted in all");

            push(series.ops, ops);
            push(series.hits, intervalRatio);
            push(series.memory, m.used);
            chart("chart-ops", series.ops, { format: (v) => count(v) + "/s" });
            chart("chart-hits", series.hits, { max: 100, format: (v) => v.toFixed(0) + "%" });
            chart("chart-memory", series.memory, { lines: [{ value: m.max, cls: "limit" }, { value: m.alert_level || 0, cls: "alert-level" }], format: human });

            fill("keyspace", stats.databases.map((d) => row(["db" + d.db, count(d.keys), count(d.expires), d.avg_ttl_ms > 0 ? duration(Math.round(d.avg_ttl_ms / 1000)) : "–"])), "no keys");
            fill("latency", stats.latency.map((l) => row([l.command, count(l.calls), fmt(l.percentiles.p50), fmt(l.percentiles.p99), fmt(l.percentiles["p99.9"])], ["command"])), "no commands yet");
            const p = stats.persistence;
            const status = (value) => value === "ok" ? "status-ok" : value === "err" ? "status-err" : "";
            fill("persistence", [
              row(["loading", p.loading ? "yes" : "no"]),
              row(["last save", p.last_save_time > 0 ? new Date(p.last_save_time * 1000).toLocaleString() : "never"]),
              row(["last background save", p.last_bgsave_status + (p.bgsave_in_progress ? " (saving now)" : "")], ["", status(p.last_bgsave_status)]),
              row(["changes since save", count(p.changes_since_last_save)]),
              row(["append-only file", p.aof_enabled ? "on, " + human(p.aof_size) + (p.aof_rewrite_in_progress ? ", rewriting" : "") : "off"]),
              row(["last AOF write", p.aof_enabled ? p.aof_last_write_status : "–"], ["", status(p.aof_enabled ? p.aof_last_write_status : "")]),
            ], "");
            text("slowlog-len", "(" + stats.slowlog.length + " entries)");
            fill("slowlog", stats.slowlog.entries.map((e) => row([String(e.id), new Date(e.time * 1000).toLocaleTimeString(), count(e.microseconds), e.command, e.client], ["", "", "", "command", ""])), "empty");

            const alerts = stats.alerts;
            $("alerts").hidden = alerts.length === 0;
            $("alert-list").replaceChildren(...alerts.map((a) => {
              const li = document.createElement("li");
              li.textContent = a.alert + ": " + a.message + " (since " + new Date(a.since * 1000).toLocaleTimeString() + ")";
              return li;
            }));
            document.body.dataset.alerts = alerts.map((a) => a.alert).join(" ");
            previous = stats;
            updates++;
            document.body.dataset.updates = String(updates);
          }
          function fmt(v) { return v === undefined ? "–" : v < 10 ? v.toFixed(2) : count(v); }

          async function poll() {
            const state = $("state");
            try {
              const response = await fetch("api/stats", { cache: "no-store", credentials: "same-origin" });
              if (!response.ok) throw new Error("HTTP " + response.status);
              render(await response.json());
              state.textContent = "live · updated " + new Date().toLocaleTimeString();
              state.classList.remove("down");
            } catch (error) {
              state.textContent = "no data: " + error.message;
              state.classList.add("down");
            }
            setTimeout(poll, 1000);
          }
          poll();
        })();

        """#
}
