// pingpong dashboard: runs started, stopped and watched live over /ws. Plain JS, no build step.
// Sections: helpers · store (snapshot + updates) · connection · controls · rendering.
"use strict";

(() => {
  // ---- helpers ------------------------------------------------------------------
  const $ = (selector) => document.querySelector(selector);
  const $$ = (selector) => Array.from(document.querySelectorAll(selector));
  let ACTIVE = new Set(); // the states of a run whose processes may be alive: the snapshot says
  const MAX_EXCHANGES = 200; // as app/live.py keeps
  const MAX_POINTS = 300;
  const OUTCOME_CLASS = (outcome) => outcome.replace(" ", "-");

  const text = (value, fallback = "—") =>
    value === null || value === undefined ? fallback : String(value);

  // Writes only what changed: an unchanged text costs no style or layout work.
  function setText(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }
  function setAttr(node, name, value) {
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }
  // Who stopped a run, as people say it (pingpong/states.py, StoppedBy.phrase).
  const stoppedPhrase = (by) => (by === "stop" ? "stopped on request" : `stopped by ${by}`);

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
    zone: null, // the logs' time zone, from the snapshot
  };

  function emptyLive() {
    return { server: null, clients: [], exchanges: [], round_trips: {}, rates: [], delays: null };
  }

  function applySnapshot(message) {
    ACTIVE = new Set(message.active_states);
    store.state = message.state;
    store.run = message.run;
    store.live = message.live || emptyLive();
    const runId = message.run ? message.run.id : null;
    if (runId !== store.runId) feed.frozen = [];
    store.runId = runId;
    store.receivedAt = performance.now();
    if (message.time_zone) store.zone = message.time_zone;
    charts.offset = store.zone ? store.zone.utc_offset_s : 0;
    renderZone();
    charts.reset();
    feed.dirty = true;
    liveTimeline.reset();
    liveTimeline.add(store.live.exchanges);
    renderAll(true);
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
      feed.frozen = []; // a paused feed holds back all of the new run's rows
      charts.reset();
      feed.dirty = true;
      liveTimeline.reset();
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
      liveTimeline.add(fresh);
      // Ignored requests whose client became known (by its timeout) since they were sent.
      if (live.attributed && live.attributed.length) {
        const byId = new Map(into.exchanges.map((e) => [e.id, e]));
        for (const { id, client } of live.attributed) {
          if (byId.has(id)) byId.get(id).client = client;
          feed.attributed(id, client);
          liveTimeline.attributed(id, client);
        }
      }
      for (const [client, points] of Object.entries(live.round_trips)) {
        const known = into.round_trips[client] || [];
        const lastKnown = known.length ? known[known.length - 1][2] : -1;
        into.round_trips[client] = known.concat(points.filter((p) => p[2] > lastKnown)).slice(-MAX_POINTS);
      }
      const rates = new Map(into.rates.map((bucket) => [bucket.t, bucket]));
      for (const bucket of live.rates) rates.set(bucket.t, bucket);
      into.rates = Array.from(rates.values()).sort((a, b) => a.t - b.t).slice(-MAX_POINTS);
    }
    scheduleRender(previousState !== store.state);
    if (previousState !== store.state) history.refresh(); // a run began, ended or moved on
  }

  // ---- connection: WebSocket with reconnect and backoff -------------------------
  const connection = {
    socket: null,
    delay: 500,
    live: false,
    lost: false, // it was live and went away: what the page shows is only the last known

    open() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws`);
      this.socket = socket;
      socket.addEventListener("open", () => {
        this.delay = 500;
        this.lost = false;
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
        this.lost = true;
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
      renderStatus();
    },
  };

  // ---- controls: the settings form, built and checked from the run's schema, start/stop
  // The schema (pingpong/core/settings.py, in the snapshot) gives each field's type, bounds and
  // messages and the rules between fields: the page applies the same rules in the same words.
  const initialSnapshot = JSON.parse($("#snapshot").textContent);
  const SCHEMA = initialSnapshot.schema;
  const form = $("#settings");
  const FORM_FIELDS = SCHEMA.fields.filter((field) => field.form);
  const inputsOf = (field) => (field.type === "range" ? [`${field.name}_min`, `${field.name}_max`] : [field.name]);
  const FIELDS = Object.fromEntries(FORM_FIELDS.map((field) => [field.name, inputsOf(field)]));
  const fieldOfInput = Object.fromEntries(FORM_FIELDS.flatMap((f) => inputsOf(f).map((name) => [name, f.name])));

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

  // The fields the person changed, the latest last: a rule between two fields is
  // reported on the one changed last.
  let changed = [];
  let edited = false; // since the form was last filled from the server's snapshot
  let formSource = null; // whose settings the form was filled with: a run id or "defaults"

  function readSettings() {
    const settings = {};
    for (const field of FORM_FIELDS) {
      const values = inputsOf(field).map((name) => {
        const raw = form.elements[name].value.trim();
        return raw === "" ? null : Number(raw);
      });
      settings[field.name] = field.type === "range" ? values : values[0];
    }
    return settings;
  }

  function fillForm(settings) {
    for (const field of FORM_FIELDS) {
      const value = settings[field.name];
      const values = field.type === "range" ? value : [value];
      inputsOf(field).forEach((name, i) => {
        form.elements[name].value = values[i] === null || values[i] === undefined ? "" : String(values[i]);
      });
    }
  }

  function problem(field, value) {
    const within = (v) =>
      (field.minimum === null || v >= field.minimum) && (field.maximum === null || v <= field.maximum);
    if (value === null) return field.nullable ? null : field.messages.invalid;
    if (field.type === "range") {
      if (!value.every((v) => Number.isInteger(v) && within(v))) return field.messages.invalid;
      return value[0] <= value[1] ? null : field.messages.order;
    }
    const valid = field.type === "integer" ? Number.isInteger(value) : Number.isFinite(value);
    return valid && within(value) ? null : field.messages.invalid;
  }

  function validate(settings) {
    const errors = {};
    for (const field of FORM_FIELDS) {
      const message = problem(field, settings[field.name]);
      if (message) errors[field.name] = message;
    }
    for (const rule of SCHEMA.rules) {
      if (rule.kind !== "below" || errors[rule.low] || errors[rule.high]) continue;
      const low = settings[rule.low];
      const top = Array.isArray(low) ? low[1] : low;
      if (top < settings[rule.high]) continue;
      const involved = changed.filter((name) => name === rule.low || name === rule.high);
      const targets = involved.length ? involved.slice(-1) : [rule.low, rule.high];
      // As pingpong/settings.py says it: the other field's value, which may not be in view.
      const other = { [rule.low]: settings[rule.high], [rule.high]: top };
      for (const name of targets) errors[name] = `${rule.messages[name]} (${other[name]} ${rule.unit})`;
    }
    return errors;
  }

  function showErrors(errors, general = "") {
    for (const [field, inputs] of Object.entries(FIELDS)) {
      $(`#error-${field}`).textContent = errors[field] || "";
      for (const name of inputs) form.elements[name].setAttribute("aria-invalid", String(!!errors[field]));
    }
    $("#form-error").textContent = general;
  }

  form.addEventListener("input", (event) => {
    const field = fieldOfInput[event.target.name];
    if (!field) return;
    edited = true;
    changed = changed.filter((name) => name !== field).concat(field);
  });
  form.addEventListener("change", (event) => {
    if (fieldOfInput[event.target.name] && !event.target.readOnly) showErrors(validate(readSettings()));
  });

  // During a run the form shows the run's settings, read-only; afterwards they stay for the
  // next Start. Every tab takes them from the server's snapshot, unless the person is editing.
  const DEFAULTS = Object.fromEntries(SCHEMA.fields.map((f) => [f.name, f.default]));

  function renderForm() {
    const run = store.run;
    const active = !!run && ACTIVE.has(run.state);
    const source = run ? run.id : "defaults";
    if (source !== formSource && (active || !edited)) {
      fillForm(run ? run.settings : DEFAULTS);
      formSource = source;
      edited = false;
      changed = [];
      showErrors({});
    }
    if (form.classList.contains("locked") !== active) {
      form.classList.toggle("locked", active);
      for (const name of Object.keys(fieldOfInput)) form.elements[name].readOnly = active;
    }
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
    if (!usable($("#start"))) return; // Enter in a field while a run is active
    setUsable($("#start"), false);
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

  // Back to the defaults, as an edit of the person's (a run's settings no longer come back).
  $("#reset").addEventListener("click", () => {
    if (!usable($("#reset"))) return;
    fillForm(DEFAULTS);
    edited = true;
    changed = [];
    showErrors({});
  });

  $("#stop").addEventListener("click", async () => {
    if (!usable($("#stop"))) return;
    setUsable($("#stop"), false);
    const { status, data } = await post("/api/stop");
    if (status !== 202) $("#form-error").textContent = (data && data.detail) || `stop failed (${status})`;
    renderButtons();
  });

  // Start and Stop are marked aria-disabled, not disabled: a disabled button drops the
  // keyboard focus to <body>. Focus stays on the button just pressed until the other one
  // is the one that makes sense, then moves there (Start → Stop → Start).
  const usable = (button) => button.getAttribute("aria-disabled") !== "true";
  const setUsable = (button, value) => setAttr(button, "aria-disabled", String(!value));

  function renderButtons() {
    const active = ACTIVE.has(store.state);
    const focused = document.activeElement;
    setUsable($("#start"), !active && connection.live);
    setUsable($("#stop"), active && store.state !== "stopping" && connection.live);
    setUsable($("#reset"), !active); // during a run the form shows its settings, read-only
    for (const [from, to] of [["#start", "#stop"], ["#stop", "#start"]]) {
      if (focused === $(from) && !usable($(from)) && usable($(to))) $(to).focus();
    }
  }

  // ---- rendering: status ------------------------------------------------------------
  function elapsedNow() {
    const run = store.run;
    if (!run) return 0;
    // While the app is away nothing is known to go on: the last known time stays.
    if (!ACTIVE.has(run.state) || !run.listening_at || connection.lost) return run.elapsed || 0;
    return run.elapsed + (performance.now() - store.receivedAt) / 1000;
  }

  function renderClock() {
    const run = store.run;
    const elapsed = elapsedNow();
    const duration = run ? run.settings.duration : 0;
    setText($("#elapsed"), clock(elapsed));
    let remaining = "—";
    if (run && run.state === "stopping") remaining = "stopping…";
    else if (run && ACTIVE.has(run.state) && !connection.lost) remaining = clock(duration - elapsed);
    setText($("#remaining"), remaining);
    // In steps of 1/400 (a pixel or two of the bar): a bar set anew four times a second
    // would be laid out and painted as often for no visible change.
    const progress = run && duration ? Math.min(1, Math.round((400 * elapsed) / duration) / 400) : 0;
    if ($("#progress").value !== progress) $("#progress").value = progress;
    if (run && ACTIVE.has(run.state)) {
      const cell = document.querySelector(`#history tr[data-run="${CSS.escape(run.id)}"] .duration`);
      if (cell) setText(cell, clock(elapsed));
    }
  }

  // What an empty table or chart says: what is coming, or why there is nothing.
  function emptyText(what) {
    const run = store.run;
    // After a restart the app has no run of its own, but the runs folder has past ones.
    if (!run) return history.count ? "no run since the app started; past runs are in History" : "no run yet";
    if (run.state === "starting") return "waiting for clients…";
    if (ACTIVE.has(run.state)) return `no ${what} yet`;
    return `no ${what} in this run`;
  }

  function renderZone() {
    const zone = store.zone;
    const el = $("#time-zone");
    if (!zone) return;
    const name = zone.name && zone.name !== zone.label ? ` (${zone.name})` : "";
    el.textContent = `times: ${zone.label}${name}, 24-hour`;
  }

  function renderStatus() {
    const state = $("#state");
    // While the app is away the state is only the last one it said: greyed, and said so.
    setText(state, connection.lost ? `last known: ${store.state}` : store.state);
    setAttr(state, "class", connection.lost ? "badge stale" : `badge state-${store.state}`);
    setAttr(state, "title", connection.lost ? "the app is not reachable; this is the last state it reported" : "");
    const title = `pingpong — ${connection.lost ? "disconnected" : store.state}`;
    if (document.title !== title) document.title = title;
    const run = store.run;
    setText($("#run-id"), run ? run.id : "—");
    $("#run-link").hidden = !run;
    if (run && $("#run-link").getAttribute("href") !== `/runs/${encodeURIComponent(run.id)}`) {
      $("#run-link").href = `/runs/${encodeURIComponent(run.id)}`;
    }
    setText($("#address"), text(run && run.address));
    setText($("#stopped-by"), run && run.stopped_by ? `· ${stoppedPhrase(run.stopped_by)}` : "");
    setText($("#run-error"), (run && run.error) || "");
    const processes = (run ? run.processes : [])
      .map(
        (p) => `<tr><td>${escapeHtml(p.role)}</td><td>${text(p.pid)}</td>
          <td>${escapeHtml(p.state)}${p.killed ? " (killed)" : ""}</td><td>${text(p.exit_code)}</td></tr>`,
      )
      .join("") || `<tr><td colspan="4" class="muted">${run ? "starting processes…" : emptyText("processes")}</td></tr>`;
    if (processes !== renderStatus.processes) { // rebuilt only when a process changed
      renderStatus.processes = processes;
      $("#processes").innerHTML = processes;
    }
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
    for (const el of $$("[data-counter]")) setText(el, String(values[el.dataset.counter]));
    // One row per client, made once; afterwards only the cells whose value changed.
    const clients = (store.live && store.live.clients) || [];
    const body = $("#clients");
    const ms = (v) => (v === undefined || v === null ? "—" : String(Math.round(v)));
    if (!clients.length) {
      const waiting = store.run && ACTIVE.has(store.run.state) ? "waiting for clients…" : emptyText("client logs");
      const empty = `<tr><td colspan="11" class="muted">${waiting}</td></tr>`;
      if (body.innerHTML !== empty) body.innerHTML = empty;
      return;
    }
    if (body.rows.length !== clients.length || body.querySelector("td.muted")) {
      body.innerHTML = clients.map(() => `<tr><th scope="row"></th>${"<td></td>".repeat(10)}</tr>`).join("");
    }
    clients.forEach((c, i) => {
      const rt = c.round_trip_ms || {};
      const cells = body.rows[i].cells;
      [`client${c.client}`, c.sent, c.answered, c.timed_out, c.late, c.keepalives, ms(rt.min),
        ms(rt.avg), ms(rt.p50), ms(rt.p95), ms(rt.max)].forEach((value, j) => setText(cells[j], String(value)));
    });
  }

  // ---- rendering: charts (static/charts.js) ------------------------------------------------
  const charts = window.pingpongCharts;

  // ---- rendering: exchanges feed -------------------------------------------------------
  // The feed holds the latest MAX_EXCHANGES rows but puts in the page only those in view in
  // its scroll box (and a few either side), reusing their <tr>s: at a thousand log lines a
  // second most rows are replaced at every render, and laying out and painting 200 rows
  // four times a second was most of the page's work. Spacers above and below keep the
  // scroll height of the whole list; every row has the same height (one line, cut short).
  const FEED_OVERSCAN = 6; // rows drawn beyond each edge of the view: a scroll shows no gap
  const feed = {
    paused: false,
    held: false, // paused by scrolling down (followScroll), not by the button
    frozen: [], // while paused: copies of the exchanges there were when Pause was pressed
    client: "",
    outcomes: new Set(["answered", "ignored", "timed out", "late", "keepalive"]),
    dirty: true, // choose the rows again at the next render (filters, a new run, a snapshot)
    rendered: -1, // the newest exchange id the rows account for
    rows: [], // the exchanges the feed shows, newest first (by the time shown)
    rowHeight: 0, // px, measured from a drawn row; 0 until then (and after a resize)
    drawn: "", // what the drawn window was made from, to skip a redraw that changes nothing
    headerHeight: 0, // px above the first row: the table's header
    scroller: $(".feed-scroll"),
    viewHeight: 520, // the scroll box's height, as its ResizeObserver last said
    body: $("#exchanges"),
    above: $("#exchanges-above td"),
    below: $("#exchanges-below td"),

    matches(e) {
      // server.log does not name the client of an ignored request; until its timeout
      // does, the row belongs to every client.
      return this.outcomes.has(e.outcome) && (this.client === "" || String(e.client) === this.client ||
        (e.client === null && e.outcome === "ignored"));
    },

    clientCell(cell, e) {
      if (e.client === null && e.outcome === "ignored") {
        // A short mark in a column of fixed width: the row keeps its layout when its
        // client becomes known.
        const said = ACTIVE.has(store.state) ? "not yet attributed" : "not attributed";
        cell.innerHTML = `<span class="unattributed" title="${said}: server.log does not name the client of an ignored request; its timeout will" aria-label="${said}">client?</span>`;
      } else {
        cell.textContent = e.client === null ? "—" : `client${e.client}`;
      }
    },

    newRow() {
      const row = document.createElement("tr");
      for (const [name, label] of [["c-time"], ["c-client"], ["c-request", "request"], ["c-response", "response"], ["c-rtt"], ["outcome"]]) {
        const cell = row.insertCell();
        cell.className = name;
        if (label) cell.dataset.label = label;
      }
      return row;
    },

    fill(row, e, index) {
      const kind = OUTCOME_CLASS(e.outcome);
      row.className = `row-${kind}`;
      row.dataset.id = String(e.id);
      row.setAttribute("aria-rowindex", String(index + 2)); // the header is row 1
      const cells = row.cells;
      cells[0].textContent = e.time;
      this.clientCell(cells[1], e);
      cells[2].textContent = text(e.request);
      cells[3].textContent = text(e.response);
      cells[4].textContent = e.round_trip_ms === null ? "—" : `${Math.round(e.round_trip_ms)} ms`;
      cells[5].className = `outcome outcome-${kind}`;
      cells[5].textContent = e.outcome;
    },

    // An ignored request's client became known: its row says so (or, under a client
    // filter, the rows are chosen again).
    attributed(id, client) {
      if (this.paused && !this.held) return; // paused rows stay still; Resume rebuilds them
      if (this.held) { // held by scrolling: the row being read learns its client
        const kept = this.frozen.find((e) => e.id === id);
        if (kept) kept.client = client;
      }
      if (this.client !== "") { // the rows are chosen again at the next render
        this.dirty = true;
        return;
      }
      const row = this.body.querySelector(`tr[data-id="${id}"]`);
      if (row) row.cells[1].textContent = `client${client}`;
    },

    // Pause holds new rows back (and Resume lets them in, at the top). ``held``: paused by
    // scrolling down during a run, to read; back at the top, the feed follows again.
    pause(paused, held = false) {
      this.paused = paused;
      this.held = paused && held;
      const shown = ((store.live && store.live.exchanges) || []).filter((e) => e.id <= this.rendered);
      this.frozen = paused ? shown.map((e) => ({ ...e })) : [];
      const button = $("#pause");
      button.textContent = paused ? "Resume" : "Pause";
      button.setAttribute("aria-pressed", String(paused));
      this.dirty = true;
      this.render();
    },

    // Called on scroll: scrolled down during a run holds the rows; back at the top lets
    // the new ones in. (Without this, at hundreds of rows a second those being read would
    // be replaced under the reader several times a second.)
    followScroll() {
      const away = this.scroller.scrollTop > Math.max(4, this.headerHeight / 2);
      if (away && !this.paused && ACTIVE.has(store.state)) this.pause(true, true);
      else if (!away && this.held) this.pause(false);
    },

    render() {
      const clients = new Set(((store.live && store.live.clients) || []).map((c) => String(c.client)));
      const select = $("#filter-client");
      const options = Array.from(select.options).slice(1).map((o) => o.value);
      if (options.join() !== Array.from(clients).join()) {
        select.innerHTML = `<option value="">all</option>` +
          Array.from(clients).map((c) => `<option value="${c}">client${c}</option>`).join("");
        select.value = clients.has(this.client) ? this.client : "";
      }
      const all = (store.live && store.live.exchanges) || [];
      if (this.paused) {
        // New rows are held back; the rows already shown still follow the filters.
        const last = this.frozen.length ? this.frozen[this.frozen.length - 1].id : -1;
        const held = all.filter((e) => e.id > last && this.matches(e)).length;
        // Exchange ids run on without a gap: one missing from the latest MAX_EXCHANGES
        // means more came than are kept here, so the count is a floor.
        const more = all.length && all[0].id > last + 1 ? "+" : "";
        setText($("#held-back"), held ? `${held}${more} new ${held === 1 && !more ? "row" : "rows"} held back` : "no new rows yet");
        if (!this.dirty) return;
      } else {
        setText($("#held-back"), "");
      }
      const source = this.paused ? this.frozen : all;
      const newest = source.length ? source[source.length - 1].id : -1;
      const byTime = (a, b) => b.t - a.t || b.id - a.id; // newest first, by the time shown
      if (this.dirty || newest < this.rendered) {
        this.dirty = false;
        this.rows = source.filter((e) => this.matches(e)).sort(byTime);
      } else {
        const fresh = all.filter((e) => e.id > this.rendered && this.matches(e));
        if (!fresh.length) return;
        fresh.sort(byTime);
        // A fresh row may be older (by its time) than some already there: put it in place.
        const inOrder = !this.rows.length || byTime(fresh[fresh.length - 1], this.rows[0]) <= 0;
        this.rows = fresh.concat(this.rows);
        if (!inOrder) this.rows.sort(byTime);
        this.rows.length = Math.min(this.rows.length, MAX_EXCHANGES);
      }
      this.rendered = newest;
      this.drawn = "";
      this.draw();
    },

    // The rows in view, from the scroll position; called on render, scroll and resize.
    draw() {
      const rows = this.rows;
      const body = this.body;
      setAttr($("#exchanges-table"), "aria-rowcount", String(rows.length + 1));
      if (!rows.length) {
        const all = (store.live && store.live.exchanges) || [];
        const none = (this.paused ? this.frozen : all).length ? "no exchanges match the filters" : emptyText("exchanges");
        const empty = `<tr><td colspan="6" class="muted">${none}</td></tr>`;
        if (body.innerHTML !== empty) body.innerHTML = empty;
        this.above.style.height = this.below.style.height = "0px";
        this.drawn = "";
        return;
      }
      if (body.querySelector("td[colspan]")) body.replaceChildren();
      if (!this.rowHeight && body.rows.length) this.measure();
      const height = this.rowHeight || 24;
      // Read first thing in a frame (renderAll draws the feed first), the layout is clean
      // and this costs nothing.
      const top = Math.max(0, this.scroller.scrollTop - this.headerHeight);
      const count = Math.ceil(this.viewHeight / height) + 2 * FEED_OVERSCAN;
      // A scroll position from before the rows were fewer (a filter): the last rows then.
      const first = Math.max(0, Math.min(Math.floor(top / height) - FEED_OVERSCAN, rows.length - count));
      const last = Math.min(rows.length, first + count);
      const key = `${first}:${last}:${rows[first].id}:${rows[last - 1].id}`;
      if (key === this.drawn) return;
      this.drawn = key;
      while (body.rows.length > last - first) body.deleteRow(-1);
      while (body.rows.length < last - first) body.append(this.newRow());
      for (let i = first; i < last; i++) {
        const row = body.rows[i - first];
        if (row.dataset.id !== String(rows[i].id) || row.getAttribute("aria-rowindex") !== String(i + 2)) {
          this.fill(row, rows[i], i);
        }
      }
      this.above.style.height = `${first * height}px`;
      this.below.style.height = `${(rows.length - last) * height}px`;
      if (!this.rowHeight) {
        this.measure();
        if (this.rowHeight && this.rowHeight !== height) this.drawAgain();
      }
    },

    // Once, and again after a resize: it makes the browser lay the page out there and then.
    measure() {
      this.rowHeight = this.body.rows[0].getBoundingClientRect().height;
      this.headerHeight = this.above.parentElement.parentElement.offsetTop;
    },

    drawAgain() {
      this.drawn = "";
      this.draw();
    },
  };
  let feedScrollPending = false;
  feed.scroller.addEventListener("scroll", () => {
    feed.followScroll();
    if (feedScrollPending) return;
    feedScrollPending = true;
    requestAnimationFrame(() => {
      feedScrollPending = false;
      feed.draw();
    });
  }, { passive: true });
  if (window.ResizeObserver) {
    // A new width may change the layout (cards below 560 px): measure a row again.
    new ResizeObserver((entries) => {
      feed.viewHeight = entries[entries.length - 1].contentRect.height || feed.viewHeight;
      feed.rowHeight = 0;
      feed.drawAgain();
    }).observe(feed.scroller);
  }

  $("#filter-client").addEventListener("change", (event) => {
    feed.client = event.target.value;
    feed.dirty = true;
    feed.render();
  });
  for (const box of $$('input[name="outcome"]')) {
    box.addEventListener("change", () => {
      if (box.checked) feed.outcomes.add(box.value);
      else feed.outcomes.delete(box.value);
      feed.dirty = true;
      feed.render();
    });
  }
  $("#pause").addEventListener("click", () => {
    const paused = !feed.paused;
    feed.pause(paused);
    // Resumed: the newest rows are at the top, and the feed follows them from there.
    if (!paused && feed.scroller.scrollTop > 0) feed.scroller.scrollTop = 0;
  });

  // ---- rendering: history -----------------------------------------------------------------
  const history = {
    pending: null,
    count: 0, // runs in the runs folder, as last loaded

    refresh() {
      clearTimeout(this.pending);
      this.pending = setTimeout(() => this.load(), 100);
    },

    async load() {
      if (connection.lost) return; // the app is away: the snapshot after reconnecting refreshes it
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
          ? `${s.clients} ${s.clients === 1 ? "client" : "clients"} · ${s.duration} s · interval ${s.interval_ms.join("–")} · delay ${s.delay_ms.join("–")} · ignore ${s.ignore} · keepalive ${s.keepalive_s} s · timeout ${s.timeout_ms}${s.seed === null ? "" : ` · seed ${s.seed}`}`
          : "—";
        const server = run.summary && run.summary.server;
        const timedOut = run.summary ? run.summary.clients.reduce((sum, c) => sum + c.timed_out, 0) : 0;
        const totals = server
          ? `${server.requests} requests, ${server.answered} answered, ${server.ignored} ignored (${server.ignored_pct} %), ${timedOut} timed out`
          : "—";
        // Its state is beside its id; the check comes when the run has ended.
        let verdict = `<span class="muted">${ACTIVE.has(run.state) ? "when it ends" : "—"}</span>`;
        if (run.check_not_run) {
          verdict = `<span class="muted">not run: ${escapeHtml(run.check_not_run)}</span>`;
        } else if (run.check) {
          const findings = run.check.rules.flatMap((r) => r.findings.map((f) => `${r.name}: ${f}`));
          // Timing findings only: timers fired late (a busy machine), the protocol held.
          const timing = run.check.timing_only
            ? { word: "fail (timing)", title: "only timing rules failed: timers fired late, as on a busy machine; the protocol held" }
            : { word: "fail", title: "" };
          const notes = run.check.rules.flatMap((r) => (r.notes || []).map((n) => `${r.name}: ${n}`));
          const total = run.check.rules.reduce((sum, r) => sum + r.findings_total, 0);
          verdict = run.check.ok
            ? `<span class="verdict-pass">pass</span>`
            : `<details><summary class="verdict-fail${run.check.timing_only ? " verdict-timing" : ""}" title="${escapeHtml(timing.title)}">${timing.word}: ${total} ${total === 1 ? "finding" : "findings"}</summary><ul>${findings
                .slice(0, 20).concat(notes).map((f) => `<li>${escapeHtml(f)}</li>`).join("")}</ul></details>`;
        }
        // Each log opens as text in a new tab; the arrow beside it saves it.
        const logs = (run.logs || [])
          .map((name) => {
            const href = `/api/runs/${encodeURIComponent(run.id)}/logs/${encodeURIComponent(name)}`;
            const of = escapeHtml(`${name} of run ${run.id}`);
            return `<span class="log"><a href="${href}" target="_blank" rel="noopener" aria-label="${of}">${escapeHtml(name)}</a><a href="${href}" class="download" download="${escapeHtml(`${run.id}_${name}`)}" title="download" aria-label="download ${of}">⤓</a></span>`;
          })
          .join("");
        const duration = run.elapsed === undefined ? "—" : clock(run.elapsed);
        // A failed run's error (a process's stderr tail) goes under its row: its first
        // line, shortened, and the whole text on demand.
        let error = "";
        if (run.error) {
          const first = run.error.split("\n")[0];
          const short = first.length > 140 ? `${first.slice(0, 140)}…` : first;
          error = `<tr class="run-error-row" data-error-of="${escapeHtml(run.id)}"><td colspan="6"><details>
            <summary class="verdict-fail">${escapeHtml(short)}</summary><pre>${escapeHtml(run.error)}</pre></details></td></tr>`;
        }
        // How it ended and who stopped it, beside its id: a pass of the logs does not
        // hide a run that failed or was cut short.
        const ended = [run.state, run.stopped_by ? stoppedPhrase(run.stopped_by) : ""].filter(Boolean).join(" · ");
        const endedClass = run.state === "failed" ? "failed" : run.stopped_by === "app shutdown" ? "cut-short" : run.state;
        return `<tr data-run="${escapeHtml(run.id)}"${error ? ` class="has-error"` : ""}><td data-label="run"><input type="checkbox" class="compare-pick" value="${escapeHtml(run.id)}" aria-label="compare ${escapeHtml(run.id)}"> <a href="/runs/${encodeURIComponent(run.id)}">${escapeHtml(run.id)}</a><br><span class="run-ended ended-${escapeHtml(endedClass)}">${escapeHtml(ended)}</span></td>
          <td class="duration" data-label="duration">${duration}</td><td class="muted" data-label="settings">${escapeHtml(settings)}</td>
          <td data-label="totals">${escapeHtml(totals)}</td><td data-label="check">${verdict}</td>
          <td class="logs" data-label="logs">${logs}</td></tr>${error}`;
      });
      $("#history").innerHTML = rows.join("") || `<tr><td colspan="6" class="muted">no runs yet</td></tr>`;
      const before = this.count;
      this.count = runs.length;
      if (!store.run && !before !== !this.count) { // "no run yet" or "since the app started"
        feed.dirty = true; // its empty line is written only when it is rebuilt
        renderAll();
      }
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

  // ---- rendering: the live timeline (static/timeline.js) ---------------------------------
  // Fed by the exchanges the updates bring (the server does nothing more for it): the last
  // LIVE_KEEP_S seconds are kept here, the last `span` seconds drawn, following the head
  // unless paused; redrawn with the rest of the page (renderAll). A row of the feed is one
  // side of an exchange: a bar ends at its time and starts a round trip (or the timeout)
  // earlier; an ignored request is a mark where the server received it. Each run's page
  // has the whole picture, both sides joined.
  const T = window.pingpongTimeline;
  const LIVE_KEEP_S = 120;
  const LIVE_KEEP = 30000;
  const liveTimeline = {
    bars: [],
    byId: new Map(),
    following: true,
    span: 10,
    dirty: false,
    timeline: null,

    init() {
      this.timeline = new T.Timeline($("#live-timeline"), {
        steadyHeight: true,
        onView: (from, to, byUser) => {
          if (byUser) {
            this.setFollowing(false);
            this.span = to - from;
          }
          this.render(true);
        },
        onKey: (key) => {
          if (key !== "End") return false;
          this.setFollowing(true);
          return true;
        },
      });
      $("#live-follow").addEventListener("click", () => this.setFollowing(!this.following));
    },

    setFollowing(on) {
      this.following = on;
      const button = $("#live-follow");
      button.textContent = on ? "Pause" : "Follow";
      button.setAttribute("aria-pressed", String(!on));
      if (on) this.render(true);
    },

    reset() {
      this.bars = [];
      this.byId.clear();
      this.dirty = true;
      if (this.timeline) this.timeline.resetHeight();
    },

    bar(e, timeout) {
      const done = e.outcome === "ignored" ? null : e.t;
      let sent = null;
      if (e.outcome === "answered" && e.round_trip_ms !== null) sent = e.t - e.round_trip_ms / 1000;
      else if (e.outcome === "timed out") sent = e.t - timeout;
      return {
        id: e.id, t: sent === null ? e.t : sent, client: e.client, outcome: e.outcome,
        request: e.request, response: e.response, peer: e.outcome === "keepalive" ? null : e.client,
        client_sent: sent, server_received: e.outcome === "ignored" ? e.t : null, server_sent: null,
        client_done: done,
      };
    },

    add(exchanges) {
      const run = store.run;
      const timeout = ((run && run.settings && run.settings.timeout_ms) || 2000) / 1000;
      for (const e of exchanges) {
        const bar = this.bar(e, timeout);
        this.bars.push(bar);
        this.byId.set(bar.id, bar);
      }
      if (!this.bars.length) return;
      const cutoff = this.bars[this.bars.length - 1].t - LIVE_KEEP_S;
      let drop = 0;
      while (drop < this.bars.length && (this.bars[drop].t < cutoff || this.bars.length - drop > LIVE_KEEP)) {
        this.byId.delete(this.bars[drop].id);
        drop += 1;
      }
      if (drop) this.bars.splice(0, drop);
      this.dirty = true;
    },

    attributed(id, client) {
      const bar = this.byId.get(id);
      if (bar) {
        bar.client = client;
        this.dirty = true;
      }
    },

    render(force = false) {
      if (!this.timeline || (!force && !this.dirty)) return;
      this.dirty = false;
      this.timeline.setLanes(((store.live && store.live.clients) || []).map((c) => c.client));
      const bars = this.bars;
      if (this.following && bars.length) {
        const head = Math.max(...bars.slice(-50).map((b) => b.client_done ?? b.t));
        this.timeline.setView(head - this.span * 0.97, head + this.span * 0.03, false, true);
      }
      const { from, to } = this.timeline.view;
      const shown = bars.filter((b) => (b.client_done ?? b.t) >= from && b.t <= to);
      const base = shown.length ? Math.floor(shown[0].t) : 0;
      const ms = (t) => (t === null ? null : Math.round((t - base) * 1000));
      const column = (name) => shown.map((b) => b[name]);
      this.timeline.setData({
        mode: "bars", base, outcomes: T.OUTCOMES, count: shown.length,
        bars: {
          id: column("id"), client: column("client"), request: column("request"),
          response: column("response"), peer: column("peer"),
          outcome: shown.map((b) => T.OUTCOMES.indexOf(b.outcome)),
          t: shown.map((b) => ms(b.t)), client_sent: shown.map((b) => ms(b.client_sent)),
          server_received: shown.map((b) => ms(b.server_received)),
          server_sent: shown.map((b) => ms(b.server_sent)), client_done: shown.map((b) => ms(b.client_done)),
        },
      });
      if (!shown.length) this.timeline.setMessage(store.run ? "no exchanges in this window" : "no run yet");
      this.timeline.flush(); // in this frame, with the rest of the page
    },
  };
  liveTimeline.init();

  // ---- start ------------------------------------------------------------------------------
  // At most one render a frame, whatever the rate of updates; during a run the charts
  // are redrawn at most every CHARTS_MS (their axes' text is the dearest thing to draw).
  const CHARTS_MS = 500;
  let renderPending = false;

  // A canvas scrolled out of view is not drawn; it catches up when it comes back. (The
  // tables are kept up to date wherever they are: they are read, not only seen.)
  const inView = new Set([".charts", ".live-timeline"]);
  if (window.IntersectionObserver) {
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const key = `.${Array.from(entry.target.classList).find((c) => c !== "panel")}`;
        if (entry.isIntersecting) inView.add(key);
        else inView.delete(key);
      }
      scheduleRender(true);
    });
    for (const key of inView) observer.observe($(key));
  }
  let renderForced = false;
  let chartsDrawnAt = -Infinity;

  // While a run is active the page is redrawn at most every RENDER_MS: updates come ten
  // times a second and are merged into the store as they come; four redraws a second read
  // as live and cost less than half as much to paint. A redraw that costs more (a slow or
  // busy machine, the canvases in view) spaces them out, up to RENDER_MAX_MS, so that
  // redrawing takes at most RENDER_SHARE of the browser's main thread. A redraw's cost runs
  // from its frame's start to the end of the browser's own work for it (style, layout,
  // paint, compositing): a message posted in the frame is handled only after that work.
  const RENDER_MS = 250;
  const RENDER_MAX_MS = 1000;
  const RENDER_SHARE = 0.1;
  let renderedAt = -Infinity;
  const pacing = { cost: 0, interval: RENDER_MS }; // ms, smoothed; read by the benchmark
  window.pingpongLive = pacing;
  const afterFrame = new MessageChannel();
  afterFrame.port1.onmessage = () => {
    const cost = performance.now() - renderedAt;
    pacing.cost = pacing.cost ? 0.8 * pacing.cost + 0.2 * cost : cost;
    pacing.interval = Math.min(RENDER_MAX_MS, Math.max(RENDER_MS, pacing.cost / RENDER_SHARE));
  };

  function scheduleRender(force = false) {
    renderForced = renderForced || force;
    if (renderPending) return;
    renderPending = true;
    const run = () => {
      renderPending = false;
      const forced = renderForced;
      renderForced = false;
      renderedAt = performance.now();
      renderAll(forced);
      if (!document.hidden) afterFrame.port2.postMessage(null);
    };
    const wait = force || !ACTIVE.has(store.state) ? 0 : pacing.interval - (performance.now() - renderedAt);
    // A tab in the background gets no animation frames; its page is still kept current.
    const frame = () => (document.hidden ? setTimeout(run, 0) : requestAnimationFrame(run));
    if (wait > 0) setTimeout(frame, wait);
    else frame();
  }

  function renderAll(force = false) {
    feed.render(); // first: it reads the scroll position, and the layout is clean now
    renderStatus();
    renderForm();
    renderCounters();
    const now = performance.now();
    const calm = !ACTIVE.has(store.state);
    if (inView.has(".charts") && (force || calm || now - chartsDrawnAt >= CHARTS_MS)) {
      chartsDrawnAt = now;
      charts.render(store.live, {
        rtt: emptyText("answers"), rates: emptyText("requests"), delays: emptyText("answers"),
      });
    }
    if (inView.has(".live-timeline")) liveTimeline.render(force);
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => charts.resize(), 150);
  });
  setInterval(renderClock, 250);

  applySnapshot(initialSnapshot); // first paint from the embedded snapshot
  history.refresh();
  connection.open();
})();
