// pingpong dashboard: the page of SPEC §10, live over /ws. Plain JS, no build step.
// Sections: helpers · store (snapshot + updates) · connection · controls · rendering.
"use strict";

(() => {
  // ---- helpers ------------------------------------------------------------------
  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));
  const ACTIVE = new Set(["starting", "running", "stopping"]);
  const MAX_EXCHANGES = 200; // as app/live.py keeps
  const MAX_POINTS = 300;
  const OUTCOME_CLASS = (outcome) => outcome.replace(" ", "-");

  const text = (value, fallback = "—") =>
    value === null || value === undefined ? fallback : String(value);

  function escapeHtml(value) {
    return text(value, "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  function clock(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  }

  // ---- store: the latest snapshot, merged with every update --------------------
  const store = {
    state: "idle",
    run: null,
    live: null,
    runId: null,
    receivedAt: performance.now(), // when run.elapsed was measured, for the local clock
  };

  function emptyLive() {
    return { server: null, clients: [], exchanges: [], round_trips: {}, rates: [], delays: null };
  }

  function applySnapshot(message) {
    store.state = message.state;
    store.run = message.run;
    store.live = message.live || emptyLive();
    store.runId = message.run ? message.run.id : null;
    store.receivedAt = performance.now();
    charts.reset();
    renderAll();
  }

  function applyUpdate(message) {
    const previousState = store.state;
    store.state = message.state;
    store.run = message.run;
    store.receivedAt = performance.now();
    const runId = message.run ? message.run.id : null;
    if (runId !== store.runId) {
      store.runId = runId; // a new run: start from empty series
      store.live = emptyLive();
      charts.reset();
    }
    const live = message.live;
    if (live) {
      const into = store.live;
      into.server = live.server;
      into.clients = live.clients;
      into.delays = live.delays;
      // An update may repeat what the snapshot already held: drop what is known by id
      // (a point carries its exchange's id as its third element).
      const lastId = into.exchanges.length ? into.exchanges[into.exchanges.length - 1].id : -1;
      const fresh = live.exchanges.filter((e) => e.id > lastId);
      into.exchanges = into.exchanges.concat(fresh).slice(-MAX_EXCHANGES);
      for (const [client, points] of Object.entries(live.round_trips)) {
        const known = into.round_trips[client] || [];
        const lastKnown = known.length ? known[known.length - 1][2] : -1;
        into.round_trips[client] = known.concat(points.filter((p) => p[2] > lastKnown)).slice(-MAX_POINTS);
      }
      const rates = new Map(into.rates.map((bucket) => [bucket.t, bucket]));
      for (const bucket of live.rates) rates.set(bucket.t, bucket);
      into.rates = Array.from(rates.values()).sort((a, b) => a.t - b.t).slice(-MAX_POINTS);
    }
    renderAll();
    if (previousState !== store.state) history.refresh(); // a run began, ended or moved on
  }

  // ---- connection: WebSocket with reconnect and backoff -------------------------
  const connection = {
    socket: null,
    delay: 500,
    live: false,

    open() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws`);
      this.socket = socket;
      socket.addEventListener("open", () => {
        this.delay = 500;
        this.show("live", "live");
      });
      socket.addEventListener("message", (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "snapshot") {
          applySnapshot(message);
          history.refresh();
        } else if (message.type === "update") {
          applyUpdate(message);
        }
      });
      socket.addEventListener("close", () => {
        this.show("reconnecting", `reconnecting in ${(this.delay / 1000).toFixed(1)} s…`);
        setTimeout(() => this.open(), this.delay);
        this.delay = Math.min(this.delay * 2, 5000);
      });
    },

    show(status, label) {
      this.live = status === "live";
      const el = $("#connection");
      el.dataset.status = status;
      el.textContent = label;
      renderButtons();
    },
  };

  // ---- controls: settings form, validation (mirrors pingpong/settings.py), start/stop
  const form = $("#settings");
  const FIELDS = {
    clients: ["clients"],
    duration: ["duration"],
    interval_ms: ["interval_min", "interval_max"],
    delay_ms: ["delay_min", "delay_max"],
    ignore: ["ignore"],
    keepalive_s: ["keepalive_s"],
    timeout_ms: ["timeout_ms"],
    seed: ["seed"],
  };

  // One error slot after each field (or its fieldset), named after the API's field.
  for (const [field, inputs] of Object.entries(FIELDS)) {
    const input = form.elements[inputs[0]];
    const anchor = inputs.length > 1 ? input.closest("fieldset") : input.closest("label");
    const slot = document.createElement("span");
    slot.className = "field-error";
    slot.id = `error-${field}`;
    slot.setAttribute("aria-live", "polite");
    anchor.append(slot);
    for (const name of inputs) form.elements[name].setAttribute("aria-describedby", slot.id);
  }

  const number = (name) => {
    const raw = form.elements[name].value.trim();
    return raw === "" ? NaN : Number(raw);
  };
  const isInteger = (value) => Number.isInteger(value);
  const between = (value, low, high) => value >= low && value <= high;

  function readSettings() {
    const settings = {
      clients: number("clients"),
      duration: number("duration"),
      interval_ms: [number("interval_min"), number("interval_max")],
      delay_ms: [number("delay_min"), number("delay_max")],
      ignore: number("ignore"),
      keepalive_s: number("keepalive_s"),
      timeout_ms: number("timeout_ms"),
    };
    const seed = form.elements.seed.value.trim();
    settings.seed = seed === "" ? null : Number(seed);
    return settings;
  }

  function validate(s) {
    const errors = {};
    const range = (field, [low, high], minimum) => {
      if (!isInteger(low) || !isInteger(high)) {
        errors[field] = "must be a pair of integers [min, max]";
      } else if (!(minimum <= low && low <= high && high <= 60000)) {
        errors[field] = `must satisfy ${minimum} <= min <= max <= 60000, got ${low}-${high}`;
      }
    };
    if (!isInteger(s.clients)) errors.clients = "must be an integer";
    else if (!between(s.clients, 1, 100)) errors.clients = `must be between 1 and 100, got ${s.clients}`;
    if (isNaN(s.duration)) errors.duration = "must be a number";
    else if (!between(s.duration, 1, 86400)) errors.duration = `must be between 1 and 86400, got ${s.duration}`;
    range("interval_ms", s.interval_ms, 10);
    range("delay_ms", s.delay_ms, 0);
    if (isNaN(s.ignore)) errors.ignore = "must be a number";
    else if (!between(s.ignore, 0, 1)) errors.ignore = `must be between 0 and 1, got ${s.ignore}`;
    if (isNaN(s.keepalive_s)) errors.keepalive_s = "must be a number";
    else if (!between(s.keepalive_s, 0.1, 3600)) {
      errors.keepalive_s = `must be between 0.1 and 3600, got ${s.keepalive_s}`;
    }
    if (!isInteger(s.timeout_ms)) errors.timeout_ms = "must be an integer";
    else if (!errors.delay_ms && !(s.delay_ms[1] < s.timeout_ms && s.timeout_ms <= 3600000)) {
      errors.timeout_ms = `must be greater than the delay maximum (${s.delay_ms[1]}) and at most 3600000, got ${s.timeout_ms}`;
    }
    if (s.seed !== null && !isInteger(s.seed)) errors.seed = "must be an integer or null";
    return errors;
  }

  function showErrors(errors, general = "") {
    for (const [field, inputs] of Object.entries(FIELDS)) {
      $(`#error-${field}`).textContent = errors[field] || "";
      for (const name of inputs) form.elements[name].setAttribute("aria-invalid", String(!!errors[field]));
    }
    $("#form-error").textContent = general;
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body === undefined ? "" : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    return { status: response.status, data };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const settings = readSettings();
    const errors = validate(settings);
    showErrors(errors);
    if (Object.keys(errors).length) return;
    $("#start").disabled = true;
    const { status, data } = await post("/api/start", settings);
    if (status === 202) {
      showErrors({});
    } else if (status === 422 && data && Array.isArray(data.detail)) {
      const fromServer = {};
      let general = "";
      for (const item of data.detail) {
        const field = item.loc && item.loc[1];
        if (field && FIELDS[field]) fromServer[field] = item.msg;
        else general += `${field || "settings"}: ${item.msg} `;
      }
      showErrors(fromServer, general.trim());
    } else {
      showErrors({}, (data && data.detail) || `start failed (${status})`);
    }
    renderButtons();
  });

  $("#stop").addEventListener("click", async () => {
    $("#stop").disabled = true;
    const { status, data } = await post("/api/stop");
    if (status !== 202) $("#form-error").textContent = (data && data.detail) || `stop failed (${status})`;
    renderButtons();
  });

  function renderButtons() {
    const active = ACTIVE.has(store.state);
    $("#start").disabled = active || !connection.live;
    $("#stop").disabled = !active || store.state === "stopping" || !connection.live;
  }

  // ---- rendering: status ------------------------------------------------------------
  function elapsedNow() {
    const run = store.run;
    if (!run) return 0;
    if (!ACTIVE.has(run.state) || !run.listening_at) return run.elapsed || 0;
    return run.elapsed + (performance.now() - store.receivedAt) / 1000;
  }

  function renderClock() {
    const run = store.run;
    const elapsed = elapsedNow();
    const duration = run ? run.settings.duration : 0;
    $("#elapsed").textContent = clock(elapsed);
    $("#remaining").textContent = run && ACTIVE.has(run.state) ? clock(duration - elapsed) : "—";
    $("#progress").value = run && duration ? Math.min(1, elapsed / duration) : 0;
  }

  function renderStatus() {
    const state = $("#state");
    state.textContent = store.state;
    state.className = `badge state-${store.state}`;
    document.title = `pingpong — ${store.state}`;
    const run = store.run;
    $("#run-id").textContent = run ? run.id : "—";
    $("#run-link").hidden = !run;
    if (run) $("#run-link").href = `/runs/${encodeURIComponent(run.id)}`;
    $("#address").textContent = text(run && run.address);
    $("#stopped-by").textContent = run && run.stopped_by ? `· stopped by ${run.stopped_by}` : "";
    $("#run-error").textContent = (run && run.error) || "";
    $("#processes").innerHTML = (run ? run.processes : [])
      .map(
        (p) => `<tr><td>${escapeHtml(p.role)}</td><td>${text(p.pid)}</td>
          <td>${escapeHtml(p.state)}${p.killed ? " (killed)" : ""}</td><td>${text(p.exit_code)}</td></tr>`,
      )
      .join("");
    renderClock();
    renderButtons();
  }

  // ---- rendering: counters ------------------------------------------------------------
  function renderCounters() {
    const server = (store.live && store.live.server) || {};
    const values = {
      connected: store.run && ACTIVE.has(store.run.state) ? store.run.connected.length : 0,
      requests: server.requests || 0,
      answered: server.answered || 0,
      ignored: server.ignored || 0,
      ignored_pct: server.ignored_pct || 0,
      keepalives: server.keepalives || 0,
      last_response: text(server.last_response),
    };
    for (const el of $$("[data-counter]")) el.textContent = values[el.dataset.counter];
    const rows = ((store.live && store.live.clients) || []).map((c) => {
      const rt = c.round_trip_ms || {};
      const ms = (v) => (v === undefined || v === null ? "—" : Math.round(v));
      return `<tr><th scope="row">client${c.client}</th><td>${c.sent}</td><td>${c.answered}</td>
        <td>${c.timed_out}</td><td>${c.late}</td><td>${c.keepalives}</td><td>${ms(rt.min)}</td>
        <td>${ms(rt.avg)}</td><td>${ms(rt.p50)}</td><td>${ms(rt.p95)}</td><td>${ms(rt.max)}</td></tr>`;
    });
    $("#clients").innerHTML = rows.join("") || `<tr><td colspan="11" class="muted">no run yet</td></tr>`;
  }

  // ---- rendering: charts (static/charts.js) ------------------------------------------------
  const charts = window.pingpongCharts;

  // ---- rendering: exchanges feed -------------------------------------------------------
  const feed = {
    paused: false,
    client: "",
    outcomes: new Set(["answered", "ignored", "timed out", "late", "keepalive"]),

    render() {
      const clients = new Set(((store.live && store.live.clients) || []).map((c) => String(c.client)));
      const select = $("#filter-client");
      const options = Array.from(select.options).slice(1).map((o) => o.value);
      if (options.join() !== Array.from(clients).join()) {
        select.innerHTML = `<option value="">all</option>` +
          Array.from(clients).map((c) => `<option value="${c}">client${c}</option>`).join("");
        select.value = clients.has(this.client) ? this.client : "";
      }
      if (this.paused) return;
      const rows = ((store.live && store.live.exchanges) || [])
        .filter((e) => this.outcomes.has(e.outcome))
        .filter((e) => this.client === "" || String(e.client) === this.client)
        .slice()
        .reverse()
        .map((e) => {
          const kind = OUTCOME_CLASS(e.outcome);
          const rt = e.round_trip_ms === null ? "—" : `${Math.round(e.round_trip_ms)} ms`;
          return `<tr class="row-${kind}"><td>${e.time}</td><td>${e.client === null ? "—" : `client${e.client}`}</td>
            <td>${text(e.request)}</td><td>${text(e.response)}</td><td>${rt}</td>
            <td class="outcome outcome-${kind}">${e.outcome}</td></tr>`;
        });
      $("#exchanges").innerHTML = rows.join("") || `<tr><td colspan="6" class="muted">no exchanges</td></tr>`;
    },
  };

  $("#filter-client").addEventListener("change", (event) => {
    feed.client = event.target.value;
    feed.render();
  });
  for (const box of $$('input[name="outcome"]')) {
    box.addEventListener("change", () => {
      if (box.checked) feed.outcomes.add(box.value);
      else feed.outcomes.delete(box.value);
      feed.render();
    });
  }
  $("#pause").addEventListener("click", (event) => {
    feed.paused = !feed.paused;
    event.target.textContent = feed.paused ? "Resume" : "Pause";
    event.target.setAttribute("aria-pressed", String(feed.paused));
    feed.render();
  });

  // ---- rendering: history -----------------------------------------------------------------
  const history = {
    pending: null,

    refresh() {
      clearTimeout(this.pending);
      this.pending = setTimeout(() => this.load(), 100);
    },

    async load() {
      try {
        const response = await fetch("/api/runs");
        if (response.ok) this.render(await response.json());
      } catch (_) {
        // offline: the next snapshot after reconnecting refreshes it
      }
    },

    render(runs) {
      const rows = runs.map((run) => {
        const s = run.settings || {};
        const settings = run.settings
          ? `${s.clients} clients · ${s.duration} s · interval ${s.interval_ms.join("–")} · delay ${s.delay_ms.join("–")} · ignore ${s.ignore} · keepalive ${s.keepalive_s} s · timeout ${s.timeout_ms}${s.seed === null ? "" : ` · seed ${s.seed}`}`
          : "—";
        const server = run.summary && run.summary.server;
        const timedOut = run.summary ? run.summary.clients.reduce((sum, c) => sum + c.timed_out, 0) : 0;
        const totals = server
          ? `${server.requests} requests, ${server.answered} answered, ${server.ignored} ignored (${server.ignored_pct} %), ${timedOut} timed out`
          : "—";
        let verdict = `<span class="muted">${escapeHtml(run.state)}</span>`;
        if (run.check) {
          const findings = run.check.rules.flatMap((r) => r.findings.map((f) => `${r.name}: ${f}`));
          verdict = run.check.ok
            ? `<span class="verdict-pass">pass</span>`
            : `<details><summary class="verdict-fail">fail (${findings.length})</summary><ul>${findings
                .slice(0, 20).map((f) => `<li>${escapeHtml(f)}</li>`).join("")}</ul></details>`;
        }
        const logs = (run.logs || [])
          .map((name) => `<a href="/api/runs/${encodeURIComponent(run.id)}/logs/${encodeURIComponent(name)}" download="${escapeHtml(`${run.id}_${name}`)}">${escapeHtml(name)}</a>`)
          .join("");
        const duration = run.elapsed === undefined ? "—" : clock(run.elapsed);
        const id = escapeHtml(run.id);
        return `<tr data-run="${id}"><td><input type="checkbox" class="compare-pick" value="${id}" aria-label="compare ${id}"> <a href="/runs/${encodeURIComponent(run.id)}">${id}</a>${run.error ? `<br><small class="verdict-fail">${escapeHtml(run.error).slice(0, 200)}</small>` : ""}</td>
          <td>${duration}</td><td class="muted">${escapeHtml(settings)}</td><td>${escapeHtml(totals)}</td>
          <td>${verdict}</td><td class="logs">${logs}</td></tr>`;
      });
      $("#history").innerHTML = rows.join("") || `<tr><td colspan="6" class="muted">no runs yet</td></tr>`;
    },
  };

  // Compare: two or more runs ticked in the History open side by side.
  $("#compare-runs").addEventListener("click", () => {
    const ids = $$(".compare-pick:checked").map((box) => box.value);
    if (ids.length >= 2) location.href = `/compare?ids=${ids.map(encodeURIComponent).join(",")}`;
  });
  $("#history").addEventListener("change", () => {
    $("#compare-runs").disabled = $$(".compare-pick:checked").length < 2;
  });

  // ---- start ------------------------------------------------------------------------------
  function renderAll() {
    renderStatus();
    renderCounters();
    charts.render(store.live);
    feed.render();
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => charts.resize(), 150);
  });
  setInterval(renderClock, 250);

  applySnapshot(JSON.parse($("#snapshot").textContent)); // first paint from the embedded snapshot
  history.refresh();
  connection.open();
})();
