// pingpong: one run's page — its settings, processes, verdict, counters, timeline, charts
// and every exchange, from the run's index through the HTTP API. One time window is shared
// by the timeline, the charts and (unless unticked) the table; a live run is followed until
// it ends, then the page stays as it was. Plain JS, no build step.
"use strict";

(() => {
  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));
  const T = window.pingpongTimeline;
  const runId = document.body.dataset.run;
  const api = (path) => `/api/runs/${encodeURIComponent(runId)}/${path}`;
  const PALETTE = ["#0969da", "#1a7f37", "#cf222e", "#8250df", "#9a6700", "#bf3989", "#0550ae", "#57606a"];
  const LIVE_POLL_MS = 1000;
  const FOLLOW_SPAN_S = 30;
  const PAGE = 100;
  const LAST_PAGE = "before:1e18:0"; // a cursor after every exchange: the last page

  const text = (value, fallback = "—") => (value === null || value === undefined ? fallback : String(value));
  const el = (tag, attributes = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  };

  const state = {
    run: JSON.parse($("#run-data").textContent),
    overview: null,
    live: false,
    follow: false,
    first: null,
    last: null,
    view: null,
    clients: [],
  };

  // Each channel keeps only its latest request: a new one aborts the one in flight.
  const inFlight = {};
  async function getJSON(channel, url) {
    if (inFlight[channel]) inFlight[channel].abort();
    const controller = new AbortController();
    inFlight[channel] = controller;
    const response = await fetch(url, { signal: controller.signal });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (inFlight[channel] === controller) delete inFlight[channel];
    if (!response.ok) {
      const detail = body && body.detail;
      throw new Error(Array.isArray(detail) ? detail.map((d) => `${d.loc[1]}: ${d.msg}`).join("; ") : detail || `HTTP ${response.status}`);
    }
    return body;
  }
  const aborted = (error) => error && error.name === "AbortError";

  function showStatus(status, label) {
    const node = $("#live-status");
    node.dataset.status = status;
    node.textContent = label;
  }

  // ---- run facts, processes, verdict ------------------------------------------------------
  function renderRun(run) {
    const badge = $("#state");
    badge.textContent = run.state;
    badge.className = `badge state-${run.state}`;
    document.title = `pingpong — run ${runId} (${run.state})`;
    const s = run.settings || {};
    const facts = [
      ["started", run.started_at ? run.started_at.replace("T", " ") : null],
      ["ended", run.ended_at ? run.ended_at.replace("T", " ") : null],
      ["elapsed", run.elapsed === undefined || run.elapsed === null ? null : T.duration(run.elapsed)],
      ["stopped by", run.stopped_by],
      ["server", run.address],
      ["clients", s.clients],
      ["duration", s.duration === undefined ? null : `${s.duration} s`],
      ["send interval", s.interval_ms ? `${s.interval_ms.join("–")} ms` : null],
      ["server delay", s.delay_ms ? `${s.delay_ms.join("–")} ms` : null],
      ["ignore", s.ignore],
      ["keepalive", s.keepalive_s === undefined ? null : `${s.keepalive_s} s`],
      ["timeout", s.timeout_ms === undefined ? null : `${s.timeout_ms} ms`],
      ["seed", s.seed === null ? "random" : s.seed],
    ];
    $("#facts").replaceChildren(...facts.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [
      el("dt", { text: k }), el("dd", { text: text(v) }),
    ]));
    $("#run-error").textContent = run.error || "";
    const processes = run.processes || [];
    const failed = processes.filter((p) => p.exit_code !== 0 && p.exit_code !== null).length;
    const running = processes.filter((p) => p.state === "running").length;
    const clean = processes.length && processes.every((p) => p.exit_code === 0);
    const how = failed ? `, ${failed} failed` : running ? `, ${running} running` : clean ? ", all exited 0" : "";
    setText($("#processes-summary"), `Processes (${processes.length}${how})`);
    if (!renderRun.folded) { // many processes fold away, once: the user may open them
      renderRun.folded = true;
      $("#processes-box").open = processes.length <= 6 || failed > 0;
    }
    $("#processes").replaceChildren(...processes.map((p) => el("tr", {},
      el("td", { text: p.role }), el("td", { text: text(p.pid) }),
      el("td", { text: `${p.state}${p.killed ? " (killed)" : ""}` }), el("td", { text: text(p.exit_code) }))));
    renderVerdict(run.check, run.state);
  }

  // A finding cites "clientK.log:N" or "server.log:N": each becomes a link to that line.
  const CITATION = /\b((?:server|client[1-9][0-9]*)\.log):([1-9][0-9]*)/g;

  function linkified(message) {
    const parts = [];
    let last = 0;
    for (const match of message.matchAll(CITATION)) {
      parts.push(message.slice(last, match.index));
      const link = el("a", { href: "#", class: "cite", "data-file": match[1], "data-line": match[2], text: match[0] });
      parts.push(link);
      last = match.index + match[0].length;
    }
    parts.push(message.slice(last));
    return parts;
  }

  function renderVerdict(check, runState) {
    const verdict = $("#verdict");
    if (!check) {
      verdict.className = "muted";
      verdict.textContent = ["starting", "running", "stopping"].includes(runState)
        ? "checked when the run ends" : "not checked (no verdict in run.json)";
      $("#rules").replaceChildren();
      return;
    }
    const failed = check.rules.filter((r) => !r.ok);
    verdict.className = check.ok ? "verdict-pass" : "verdict-fail";
    verdict.textContent = check.ok ? `pass: every rule holds (${check.rules.length} rules)` : `fail: ${failed.length} of ${check.rules.length} rules`;
    $("#rules").replaceChildren(...check.rules.map((rule) => {
      const item = el("li", { class: rule.ok ? "rule-ok" : "rule-fail" },
        el("strong", { text: `${rule.ok ? "ok" : "FAIL"} ${rule.name}` }), ` — ${rule.checked} checked`);
      if (rule.findings.length) {
        const list = el("ul");
        for (const finding of rule.findings) list.append(el("li", {}, ...linkified(finding)));
        if (rule.findings_total > rule.findings.length) {
          list.append(el("li", { class: "muted", text: `… and ${rule.findings_total - rule.findings.length} more` }));
        }
        item.append(list);
      }
      return item;
    }));
    for (const note of check.notes || []) $("#rules").append(el("li", { class: "muted", text: note }));
  }

  // ---- the log lines a finding cites ------------------------------------------------------
  const viewer = {
    exchange: null,
    async open(file, line) {
      const box = $("#line-viewer");
      box.hidden = false;
      $("#line-viewer-title").textContent = `${file}, line ${line}`;
      $("#line-viewer-lines").textContent = "loading…";
      try {
        const found = await getJSON("lines", `${api(`lines/${encodeURIComponent(file)}`)}?line=${line}&context=3`);
        const rows = found.lines.map((l) => {
          const row = el("span", { class: l.line === found.line ? "cited" : "" }, `${String(l.line).padStart(7)}  ${l.text}\n`);
          return row;
        });
        $("#line-viewer-lines").replaceChildren(...(rows.length ? rows : ["(no such line)"]));
        this.exchange = found.exchange;
        $("#line-viewer-show").hidden = !found.exchange;
      } catch (error) {
        if (!aborted(error)) $("#line-viewer-lines").textContent = `could not read it: ${error.message}`;
      }
    },
  };
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.cite");
    if (!link) return;
    event.preventDefault();
    viewer.open(link.dataset.file, Number(link.dataset.line));
  });
  $("#line-viewer-close").addEventListener("click", () => { $("#line-viewer").hidden = true; });
  $("#line-viewer-show").addEventListener("click", () => {
    if (viewer.exchange) showExchange(viewer.exchange);
  });

  // ---- counters ---------------------------------------------------------------------------
  function setText(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }

  function renderCounters(counters, index) {
    const server = counters.server;
    for (const node of $$("[data-counter]")) setText(node, text(server[node.dataset.counter]));
    const body = $("#clients");
    const ms = (v) => (v === undefined || v === null ? "—" : String(Math.round(v)));
    counters.clients.forEach((c, i) => {
      const rt = c.round_trip_ms || {};
      const cells = [`client${c.client}`, c.sent, c.answered, c.timed_out, c.late, c.keepalives,
        ms(rt.min), ms(rt.avg), ms(rt.p50), ms(rt.p95), ms(rt.max)].map(String);
      let row = body.rows[i];
      if (!row) {
        row = body.insertRow();
        row.append(el("th", { scope: "row" }), ...cells.slice(1).map(() => el("td")));
      }
      cells.forEach((value, j) => setText(row.cells[j], value));
    });
    while (body.rows.length > counters.clients.length) body.deleteRow(-1);
    const lines = index.lines.toLocaleString("en");
    setText($("#index-status"), `${lines} log lines indexed${index.complete ? "" : " so far"}; ${index.bad_lines_total} could not be read.`);
    const problems = [...index.problems.map((p) => el("li", { text: p })),
      ...index.bad_lines.map((b) => el("li", {}, ...linkified(`${b.file}:${b.line}: ${b.reason}`)))];
    if (index.bad_lines_total > index.bad_lines.length) {
      problems.push(el("li", { class: "muted", text: `… and ${index.bad_lines_total - index.bad_lines.length} more bad lines` }));
    }
    const key = JSON.stringify([index.problems, index.bad_lines, index.bad_lines_total]);
    if ($("#problems").dataset.key !== key) {
      $("#problems").dataset.key = key;
      $("#problems").replaceChildren(...problems);
    }
  }

  // ---- the shared window ----------------------------------------------------------------
  // Two loads, each one at a time with the latest view winning. The timeline's (what the
  // user is moving) goes out at once; the charts' and the table's follow once a view moved
  // by the user has held still for REST_DELAY_MS: a burst of wheel steps asks the server
  // for timelines only, and a timeline never waits behind charts and a table. Input-to-
  // data times are kept for the benchmark (window.pingpongRunPage.latencies, ms).
  const REST_DELAY_MS = 150;
  const loading = { busy: false, again: false, changedAt: null, latencies: [] };
  const rest = { busy: false, again: false, timer: null };
  window.pingpongRunPage = loading;

  function setView(from, to, byUser) {
    if (byUser && state.follow) setFollow(false);
    state.view = { from, to };
    timeline.setView(from, to, false, true);
    setText($("#window-label"), `${T.clock(from)} – ${T.clock(to)} (${T.duration(to - from)})`);
    for (const chart of [charts.rtt, charts.rates]) if (chart) chart.redraw(true, false);
    if (byUser) loading.changedAt = performance.now();
    loadWindow(byUser ? REST_DELAY_MS : 0);
  }

  function wholeRun() {
    const first = state.first === null ? Date.now() / 1000 : state.first;
    const last = state.last === null ? first + 1 : state.last;
    const margin = Math.max(0.05, (last - first) * 0.01);
    return [first - margin, last + margin];
  }

  function followView() {
    const last = state.last === null ? Date.now() / 1000 : state.last;
    const span = state.view ? Math.min(state.view.to - state.view.from, 3600) : FOLLOW_SPAN_S;
    return [last - span * 0.95, last + span * 0.05];
  }

  function setFollow(on) {
    state.follow = on;
    const button = $("#follow");
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Following" : "Follow";
    if (on) setView(...followView(), false);
  }

  const failed = (error) => {
    if (!aborted(error)) showStatus("error", error.message);
  };
  const windowQuery = () => {
    const { from, to } = state.view;
    return `from=${from.toFixed(3)}&to=${to.toFixed(3)}&width=${timeline.pixelWidth()}`;
  };

  async function loadWindow(restDelay = 0) {
    clearTimeout(rest.timer); // the charts and table of a view already left behind
    rest.timer = null;
    if (loading.busy) {
      loading.again = true;
      loading.restDelay = restDelay;
      return;
    }
    loading.busy = true;
    loading.restDelay = restDelay;
    try {
      do {
        loading.again = false;
        await loadTimeline(loading.changedAt);
      } while (loading.again);
    } finally {
      loading.busy = false;
    }
    rest.timer = setTimeout(loadRest, loading.restDelay);
  }

  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

  async function loadTimeline(changedAt) {
    if (!state.view) return;
    try {
      const data = await getJSON("timeline", `${api("timeline")}?${windowQuery()}`);
      // Drawn even if the view moved on meanwhile (its bars sit at their times in any
      // view): something to see while the next one loads.
      timeline.setData(data);
      if (!data.count) timeline.setMessage("no exchanges in this window");
      if (changedAt !== null && !loading.again) {
        await nextFrame(); // on screen once the next frame is drawn
        loading.latencies.push(performance.now() - changedAt);
        if (loading.latencies.length > 1000) loading.latencies.shift(); // the latest 1000
        if (loading.changedAt === changedAt) loading.changedAt = null;
      }
    } catch (error) {
      failed(error);
    }
  }

  // The charts and the table for the view; the page counts a window loaded (for the
  // tests: body[data-window-loaded]) once they are in and no newer view is on its way.
  async function loadRest() {
    rest.timer = null;
    if (rest.busy) {
      rest.again = true;
      return;
    }
    rest.busy = true;
    try {
      do {
        rest.again = false;
        if (!state.view) continue;
        const work = [getJSON("charts", `${api("charts")}?${windowQuery()}`).then((data) => charts.render(data))];
        if (table.filters.window) {
          const around = table.around; // the exchange the window moved to (showAround)
          table.around = null;
          const cursor = around ? table.cursorAt(around) : state.follow ? LAST_PAGE : null;
          work.push(table.load(cursor).then(() => around && table.reveal(around.id)));
        }
        for (const result of await Promise.allSettled(work)) {
          if (result.status === "rejected") failed(result.reason);
        }
      } while (rest.again);
    } finally {
      rest.busy = false;
    }
    if (!loading.busy && rest.timer === null) {
      document.body.dataset.windowLoaded = String(Number(document.body.dataset.windowLoaded || 0) + 1);
    }
  }

  // ---- timeline ---------------------------------------------------------------------------
  const timeline = new T.Timeline($("#timeline"), {
    onView: (from, to, byUser) => {
      if (byUser) setView(from, to, true);
      else if (state.view) loadWindow(); // resized: the same window, more or fewer pixels
    },
    onSelect: (bar) => table.showAround(bar),
    onKey: (key) => {
      if (key === "0" || key === "Home") {
        setView(...wholeRun(), true);
        return true;
      }
      if (key === "End" && state.live) {
        setFollow(true);
        return true;
      }
      return false;
    },
  });
  const centre = () => (state.view.from + state.view.to) / 2;
  $("#zoom-in").addEventListener("click", () => timeline.zoom(1 / 1.5, centre()));
  $("#zoom-out").addEventListener("click", () => timeline.zoom(1.5, centre()));
  $("#zoom-all").addEventListener("click", () => setView(...wholeRun(), true));
  $("#follow").addEventListener("click", () => setFollow(!state.follow));

  function showExchange(exchange) {
    timeline.centerOn(exchange.t, exchange.id);
    table.showAround(exchange);
    $("#timeline").scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  // ---- charts (uPlot): values at the cursor, 24-hour axes, drag to zoom the shared window
  const charts = {
    rtt: null,
    rttKey: "",
    rates: null,
    delays: null,

    size(selector) {
      return { width: Math.max(240, $(selector).clientWidth), height: 190 };
    },

    timeOptions(selector, series) {
      return {
        ...this.size(selector),
        series: [{ label: "time", value: (_u, v) => (v === null ? "—" : T.clock(v)) }, ...series],
        legend: { live: true },
        cursor: { drag: { x: true, y: false, setScale: false } },
        scales: { x: { time: true, auto: false, range: () => [state.view.from, state.view.to] } },
        axes: [T.uplotTimeAxis(), {}],
        hooks: {
          setSelect: [(u) => {
            if (u.select.width > 4) {
              const from = u.posToVal(u.select.left, "x");
              const to = u.posToVal(u.select.left + u.select.width, "x");
              setView(from, to, true);
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          }],
        },
      };
    },

    render(data) {
      // Round trip per client: the average in each bucket (its min and max in the legend).
      const clients = Object.keys(data.round_trips).sort((a, b) => a - b);
      const tables = clients.map((c) => {
        const points = data.round_trips[c];
        return [points.map((p) => p[0]), points.map((p) => p[1])];
      });
      const joined = tables.length ? uPlot.join(tables) : [[]];
      const key = clients.join(",");
      if (!this.rtt || this.rttKey !== key) {
        if (this.rtt) this.rtt.destroy();
        const series = clients.map((c, i) => ({
          label: `client${c}`, stroke: PALETTE[i % PALETTE.length], spanGaps: true,
          points: { show: true, size: 3 }, value: (_u, v) => (v === null ? "—" : `${Math.round(v)} ms`),
        }));
        this.rtt = new uPlot(this.timeOptions("#chart-rtt", series), joined, $("#chart-rtt"));
        this.rttKey = key;
      } else {
        this.rtt.setData(joined, false);
        this.rtt.redraw(true, false);
      }
      const r = data.rates;
      const per = data.rate_step_s > 1 ? ` per ${data.rate_step_s} s` : "";
      const rates = [r.map((b) => b.t + data.rate_step_s / 2), r.map((b) => b.requests), r.map((b) => b.answered),
        r.map((b) => b.ignored), r.map((b) => b.timed_out)];
      if (!this.rates || this.ratesPer !== per) {
        if (this.rates) this.rates.destroy();
        this.ratesPer = per;
        this.rates = new uPlot(this.timeOptions("#chart-rates", [
          { label: `requests${per}`, stroke: "#0969da" }, { label: "answered", stroke: "#1a7f37" },
          { label: "ignored", stroke: "#9a6700" }, { label: "timed out", stroke: "#cf222e" }]), rates, $("#chart-rates"));
      } else {
        this.rates.setData(rates, false);
        this.rates.redraw(true, false);
      }
      const d = data.delays;
      const delays = [d.counts.map((_, i) => d.low + i * d.width), d.counts];
      if (!this.delays) {
        this.delays = new uPlot({
          ...this.size("#chart-delays"),
          legend: { live: true },
          series: [{ label: "delay from, ms" }, {
            label: "answers", stroke: "#0a58ca", fill: "rgba(10,88,202,.25)",
            paths: uPlot.paths.bars({ size: [0.9, 60], align: 1 }), points: { show: false },
          }],
          scales: { x: { time: false, range: (_u, min, max) => [min, max + d.width] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        }, delays, $("#chart-delays"));
      } else {
        this.delays.setData(delays);
      }
    },

    resize() {
      if (this.rtt) this.rtt.setSize(this.size("#chart-rtt"));
      if (this.rates) this.rates.setSize(this.size("#chart-rates"));
      if (this.delays) this.delays.setSize(this.size("#chart-delays"));
    },
  };
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => charts.resize(), 150);
  });

  // ---- the table of exchanges ------------------------------------------------------------
  const table = {
    filters: { client: "", request: "", outcomes: new Set(["answered", "timed out", "ignored", "late", "keepalive"]), window: true, wire: false },
    page: null,
    cursor: null,
    highlight: null,
    around: null, // an exchange the window moved to, for the next load to open the table at

    query() {
      const params = new URLSearchParams();
      if (this.filters.client) params.set("client", this.filters.client);
      if (this.filters.request !== "") params.set("request", this.filters.request);
      if (this.filters.outcomes.size < 5) params.set("outcome", Array.from(this.filters.outcomes).join(","));
      if (this.filters.window && state.view) {
        params.set("from", state.view.from.toFixed(3));
        params.set("to", state.view.to.toFixed(3));
      }
      return params;
    },

    async load(cursor) {
      this.cursor = cursor;
      const params = this.query();
      $("#export-csv").href = `${api("exchanges.csv")}?${params}`;
      if (!this.filters.outcomes.size) {
        this.render({ exchanges: [], total: 0, next: null, prev: null });
        return;
      }
      params.set("limit", String(PAGE));
      if (cursor) params.set("cursor", cursor);
      try {
        this.render(await getJSON("table", `${api("exchanges")}?${params}`));
        // What the rows on screen were asked for (a script or a test can wait on it).
        $("#table-rows").dataset.filters = this.query().toString();
      } catch (error) {
        if (!aborted(error)) setText($("#table-total"), error.message);
      }
    },

    // The page that starts at this exchange, with it highlighted.
    showAround(exchange) {
      this.highlight = exchange.id;
      const inWindow = !state.view || (exchange.t >= state.view.from && exchange.t < state.view.to);
      if (!inWindow && this.filters.window) {
        // A bar that began before the window (it reaches into it): the window moves to
        // take it in, and the table, which follows the window, finds it there.
        const span = state.view.to - state.view.from;
        this.around = exchange;
        setView(exchange.t - span * 0.05, exchange.t + span * 0.95, true);
        return;
      }
      this.load(this.cursorAt(exchange)).then(() => this.reveal(exchange.id));
    },

    // From half a millisecond before it: its time may have crossed JSON as a rounded float.
    cursorAt: (exchange) => `after:${exchange.t - 0.0005}:0`,

    reveal(id) {
      const row = $(`#table-rows tr[data-id="${id}"]`);
      if (row) row.scrollIntoView({ block: "nearest" });
    },

    render(page) {
      this.page = page;
      const total = page.total.toLocaleString("en");
      setText($("#table-total"), `${total} exchange${page.total === 1 ? "" : "s"} match${page.live ? " so far" : ""}`);
      $("#page-prev").disabled = !page.prev;
      $("#page-first").disabled = !page.prev;
      $("#page-next").disabled = !page.next;
      $("#page-last").disabled = !page.next;
      const rows = [];
      for (const e of page.exchanges) {
        const kind = e.outcome.replace(" ", "-");
        const when = e.times.client_sent ?? e.times.server_received ?? e.t;
        const row = el("tr", { class: `row-${kind}${e.id === this.highlight ? " selected" : ""}`, "data-id": String(e.id), tabindex: "0" },
          el("td", { text: T.clock(when) }),
          el("td", { text: e.client === null ? "—" : `client${e.client}` }),
          el("td", { text: text(e.request) }),
          el("td", { text: text(e.response) }),
          el("td", { text: e.round_trip_ms === null ? "—" : `${e.round_trip_ms} ms` }),
          el("td", { text: e.delay_ms === null ? "—" : `${e.delay_ms} ms` }),
          el("td", { class: `outcome outcome-${kind}`, text: e.outcome }));
        row.exchange = e;
        rows.push(row);
        if (this.filters.wire) rows.push(this.details(e));
      }
      if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "7", class: "muted", text: "no exchanges match" })));
      $("#table-rows").replaceChildren(...rows);
    },

    // The lines that crossed the wire, the log lines that record them, and what happened.
    details(e) {
      const wire = e.wire;
      const lines = [];
      if (wire.request) lines.push(["client → server", wire.request]);
      if (e.outcome === "timed out" || e.outcome === "ignored") lines.push(["server → client", "(nothing: ignored)"]);
      else if (wire.response) lines.push(["server → client", wire.response]);
      for (const side of ["client", "server"]) {
        const log = e.log[side];
        if (log) lines.push([`${log.file}:${log.line}`, log.text === null || log.text === undefined ? "" : log.text]);
      }
      const list = el("dl", { class: "wire-lines" });
      for (const [label, value] of lines) {
        const dt = el("dt", {}, ...(/\.log:\d+$/.test(label) ? linkified(label) : [label]));
        list.append(dt, el("dd", {}, el("code", { text: value })));
      }
      const story = explain(e);
      return el("tr", { class: "details" }, el("td", { colspan: "7" }, list, story ? el("p", { class: "story", text: story }) : ""));
    },
  };

  // Why an exchange ended as it did, in words.
  function explain(e) {
    const t = e.times;
    const ms = (a, b) => Math.round((a - b) * 1000);
    if (e.outcome === "timed out") {
      const why = e.log.server
        ? `the server received it at ${T.clock(t.server_received)} and ignored it (${e.log.server.file}:${e.log.server.line})`
        : "the server's log has no ignored request to match it";
      return `Request ${e.request} of client${e.client} timed out: ${why}; the client gave up ${ms(t.client_done, t.client_sent)} ms after sending it.`;
    }
    if (e.outcome === "ignored") return `The server ignored request ${e.request} at ${T.clock(t.server_received)}; no client's log has it timing out (yet).`;
    if (e.outcome === "late") return `A PONG for request ${e.request} that came after the client had stopped waiting for it.`;
    if (e.outcome === "answered" && t.client_done !== null && t.client_sent !== null && t.server_sent !== null) {
      return `Answered in ${ms(t.client_done, t.client_sent)} ms, ${e.delay_ms} ms of it the server's chosen delay.`;
    }
    return "";
  }

  $("#table-rows").addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    const row = event.target.closest("tr[data-id]");
    if (!row || !row.exchange) return;
    table.highlight = row.exchange.id;
    for (const other of $$("#table-rows tr.selected")) other.classList.remove("selected");
    row.classList.add("selected");
    timeline.centerOn(row.exchange.t, row.exchange.id);
  });
  $("#table-rows").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches("tr[data-id]")) event.target.click();
  });
  $("#table-client").addEventListener("change", (event) => {
    table.filters.client = event.target.value;
    table.load(null);
  });
  let requestTimer = null;
  $("#table-request").addEventListener("input", (event) => {
    const value = event.target.value.trim();
    if (value !== "" && !/^[0-9]+$/.test(value)) return;
    table.filters.request = value;
    clearTimeout(requestTimer);
    requestTimer = setTimeout(() => table.load(null), 250);
  });
  for (const box of $$('input[name="table-outcome"]')) {
    box.addEventListener("change", () => {
      if (box.checked) table.filters.outcomes.add(box.value);
      else table.filters.outcomes.delete(box.value);
      table.load(null);
    });
  }
  $("#table-window").addEventListener("change", (event) => {
    table.filters.window = event.target.checked;
    table.load(null);
  });
  $("#table-wire").addEventListener("change", (event) => {
    table.filters.wire = event.target.checked;
    if (table.page) table.render(table.page);
  });
  $("#table-filters").addEventListener("submit", (event) => event.preventDefault());
  $("#page-first").addEventListener("click", () => table.load(null));
  $("#page-prev").addEventListener("click", () => table.page && table.page.prev && table.load(table.page.prev));
  $("#page-next").addEventListener("click", () => table.page && table.page.next && table.load(table.page.next));
  $("#page-last").addEventListener("click", () => table.load(LAST_PAGE));

  function renderClientOptions(clients) {
    const select = $("#table-client");
    const known = Array.from(select.options).slice(1).map((o) => o.value);
    const wanted = clients.map(String).concat(["none"]);
    if (known.join() === wanted.join()) return;
    select.replaceChildren(el("option", { value: "", text: "all" }),
      ...clients.map((c) => el("option", { value: String(c), text: `client${c}` })),
      el("option", { value: "none", text: "no client (server only)" }));
    select.value = table.filters.client;
  }

  // ---- overview and the live loop ------------------------------------------------------
  async function loadOverview() {
    const overview = await getJSON("overview", api("overview"));
    state.overview = overview;
    state.live = overview.live;
    state.first = overview.index.first;
    state.last = overview.index.last;
    state.clients = overview.clients;
    renderRun(overview.run);
    renderCounters(overview.counters, overview.index);
    renderClientOptions(overview.clients);
    timeline.setLanes(overview.clients);
    $("#follow").hidden = !overview.live;
    showStatus(overview.live ? "live" : "past", overview.live ? "live: following the run" : "finished run");
    return overview;
  }

  async function poll() {
    try {
      const overview = await loadOverview();
      if (state.follow) setView(...followView(), false);
      else if (!overview.live) loadWindow(); // the run just ended: one last look
      if (!overview.live) {
        showStatus("past", "the run has ended; this page stays as it was");
        setFollow(false);
        $("#follow").hidden = true;
        return;
      }
      if (!state.follow && table.page && !table.page.next) table.load(table.cursor);
    } catch (error) {
      if (!aborted(error)) showStatus("error", `could not refresh: ${error.message}`);
    }
    setTimeout(poll, LIVE_POLL_MS);
  }

  async function start() {
    renderRun(state.run);
    try {
      const overview = await loadOverview();
      if (overview.live) {
        setFollow(true);
        setTimeout(poll, LIVE_POLL_MS);
      } else {
        setView(...wholeRun(), false);
      }
      const wanted = new URLSearchParams(location.search);
      if (wanted.has("client")) {
        table.filters.client = wanted.get("client");
        $("#table-client").value = table.filters.client;
      }
      if (wanted.has("request")) {
        table.filters.request = wanted.get("request");
        $("#table-request").value = table.filters.request;
      }
      if (!table.filters.window) table.load(null);
    } catch (error) {
      showStatus("error", `could not open the run: ${error.message}`);
    }
  }

  start();
})();
