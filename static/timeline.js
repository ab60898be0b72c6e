// pingpong: the timeline of a run's exchanges, drawn on a canvas. One lane per client; each
// request a bar from its send to its answer (or timeout), coloured by outcome, with the
// server's delay darker inside it; keepalives as ticks; requests in flight together stacked
// so that they visibly overlap. Wheel and +/− zoom, drag and ←/→ pan, 0 shows the whole
// run; hovering a bar shows its wire lines, its four times and its round trip.
//
// The timeline only draws: whoever owns it fetches the data for the view it reports
// (onView) and hands it over (setData). It redraws at most once a frame, whatever happens.
// Also here: the 24-hour time helpers the run, compare and live pages share.
"use strict";

(() => {
  const OUTCOMES = ["answered", "timed out", "ignored", "late", "keepalive"];
  const [TIMED_OUT, IGNORED, LATE, KEEPALIVE] = [1, 2, 3, 4]; // indexes in OUTCOMES
  const COLOURS = {
    answered: "#1a7f37", "timed out": "#cf222e", ignored: "#9a6700", late: "#8250df", keepalive: "#0969da",
  };
  const ROW_H = 9; // one request in flight; a lane grows with the most it had at once
  const AXIS_H = 22;
  const GUTTER = 74; // lane labels
  const MAX_ROWS = 6; // requests in flight drawn side by side in a lane; more share the last row
  const MIN_SPAN = 0.005; // seconds: the closest zoom

  // ---- time, 24-hour, local --------------------------------------------------------------
  const pad = (n, width = 2) => String(n).padStart(width, "0");

  function clock(epoch, withMs = true) {
    if (epoch === null || epoch === undefined || !isFinite(epoch)) return "—";
    const d = new Date(Math.round(epoch * 1000));
    const base = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withMs ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
  }

  function dateTime(epoch) {
    if (epoch === null || epoch === undefined) return "—";
    const d = new Date(Math.round(epoch * 1000));
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(epoch)}`;
  }

  function duration(seconds) {
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h ? `${h} h ${pad(m)} min` : `${m} min ${pad(s % 60)} s`;
  }

  const STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300,
    600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

  function tickStep(span, pixels, gap = 90) {
    const wanted = (span * gap) / Math.max(1, pixels);
    return STEPS.find((s) => s >= wanted) || 86400;
  }

  // Ticks on local-time boundaries (a tick each hour falls on the hour, in the logs' zone).
  function ticks(from, to, pixels) {
    const step = tickStep(to - from, pixels);
    const offset = -new Date(from * 1000).getTimezoneOffset() * 60;
    const out = [];
    for (let t = Math.ceil((from + offset) / step) * step - offset; t <= to && out.length < 200; t += step) {
      out.push(Math.round(t * 1000) / 1000);
    }
    return { step, ticks: out };
  }

  // uPlot axis and value formatters: 24-hour clock, milliseconds when the span is short.
  function uplotTimeAxis(extra = {}) {
    return {
      space: 100,
      values: (u, splits) => {
        const span = u.scales.x.max - u.scales.x.min;
        return splits.map((v) => (v === null ? "" : clock(v, span < 20)));
      },
      ...extra,
    };
  }

  // The lines that crossed the wire for an exchange, as the protocol writes them.
  function wireLines(e) {
    const request = e.request === null || e.outcome === "late" || e.outcome === "keepalive"
      ? null : `[${e.request}] PING`;
    let response = null;
    if (e.outcome === "keepalive" && e.response !== null) response = `[${e.response}] keepalive`;
    else if (e.response !== null && e.request !== null && e.peer !== null) {
      response = `[${e.response}/${e.request}] PONG (${e.peer})`;
    }
    return { request, response };
  }

  // ---- the timeline ----------------------------------------------------------------------
  class Timeline {
    constructor(container, options = {}) {
      this.el = container;
      // onView(from, to, byUser), onSelect(bar), onKey(key); steadyHeight: lanes only grow
      // (until resetHeight), for a timeline redrawn as it moves: a canvas resized at every
      // frame is a new canvas at every frame.
      this.options = options;
      this.canvas = document.createElement("canvas");
      this.canvas.className = "timeline-canvas";
      this.tooltip = document.createElement("div");
      this.tooltip.className = "timeline-tooltip";
      this.tooltip.setAttribute("role", "tooltip");
      this.tooltip.hidden = true;
      this.el.append(this.canvas, this.tooltip);
      this.ctx = this.canvas.getContext("2d");
      this.view = { from: 0, to: 1 };
      this.laneH = 30;
      this.lanes = [];
      this.laneIndex = new Map();
      this.bars = null; // columns of the bars mode, with start/end/lane/row computed
      this.counts = null;
      this.hovered = -1;
      this.selectedId = null;
      this.pending = false;
      this.frame = 0;
      this.drag = null;
      this.mouse = null; // where the mouse is over the canvas, while it is
      this.width = 0;
      this.message = "";
      this._listen();
      this._resize();
    }

    // -- what to draw ------------------------------------------------------------------
    setLanes(clients) {
      const keys = clients.map(String);
      if (keys.join() === this.lanes.filter((k) => k !== "server").join()) return;
      this.lanes = keys.concat(this.lanes.includes("server") ? ["server"] : []);
      this._relayout();
    }

    _ensureLane(key) {
      if (this.laneIndex.has(key)) return;
      if (key === "server") this.lanes.push("server");
      else {
        this.lanes = this.lanes.filter((k) => k !== "server").concat([key])
          .sort((a, b) => (a === "server") - (b === "server") || Number(a) - Number(b));
        if (this.laneIndex.has("server")) this.lanes.push("server");
      }
      this._relayout();
    }

    _relayout() {
      this.laneIndex = new Map(this.lanes.map((key, i) => [key, i]));
      if (this.bars) this._pack();
      this._fit();
      this.requestDraw();
    }

    // byUser: the user moved it (wheel, drag, keys); silent: the owner set it, do not report.
    setView(from, to, byUser = false, silent = false) {
      if (!(to > from)) return;
      if (to - from < MIN_SPAN) {
        const middle = (from + to) / 2;
        from = middle - MIN_SPAN / 2;
        to = middle + MIN_SPAN / 2;
      }
      if (from === this.view.from && to === this.view.to) return;
      this.view = { from, to };
      this.requestDraw();
      if (!silent && this.options.onView) this.options.onView(from, to, byUser);
    }

    setMessage(text) {
      this.message = text;
      this.requestDraw();
    }

    setData(data) {
      this.message = "";
      if (data.mode === "bars") {
        // Times come as whole milliseconds after data.base (a whole second). A live
        // timeline sets thousands of bars several times a second: no allocation per bar.
        const b = data.bars;
        const epoch = (column) => column.map((ms) => (ms === null ? null : data.base + ms / 1000));
        const times = [epoch(b.client_sent), epoch(b.server_received), epoch(b.server_sent), epoch(b.client_done)];
        const n = b.id.length;
        const kinds = data.outcomes.map((o) => OUTCOMES.indexOf(o));
        const bars = {
          n, id: b.id, t: epoch(b.t), client: b.client, request: b.request, response: b.response, peer: b.peer,
          outcome: b.outcome.map((o) => data.outcomes[o]), kind: Uint8Array.from(b.outcome, (o) => kinds[o]),
          times, start: new Float64Array(n), end: new Float64Array(n),
          lane: new Int32Array(n), row: new Int8Array(n), laneKey: new Array(n),
        };
        const keys = new Set();
        for (let i = 0; i < n; i++) {
          let low = Infinity;
          let high = -Infinity;
          for (const column of times) {
            const t = column[i];
            if (t === null) continue;
            if (t < low) low = t;
            if (t > high) high = t;
          }
          bars.start[i] = low === Infinity ? 0 : low;
          bars.end[i] = high === -Infinity ? 0 : high;
          const key = b.client[i] === null ? "server" : String(b.client[i]);
          bars.laneKey[i] = key;
          keys.add(key);
        }
        for (const key of keys) this._ensureLane(key);
        this.bars = bars;
        this.counts = null;
        this._pack();
        this._fit();
      } else {
        this.bars = null;
        this.counts = data;
        this.laneRows = null;
        for (const key of Object.keys(data.counts)) this._ensureLane(key);
        this._fit();
      }
      // New data under a mouse that has not moved (a live timeline): the tooltip follows.
      this.hovered = this.mouse ? this.hit(this.mouse.x, this.mouse.y) : -1;
      this._tooltip(this.hovered, this.mouse ? this.mouse.x : 0, this.mouse ? this.mouse.y : 0);
      this.requestDraw();
    }

    _fit() {
      const rows = Math.max(1, ...(this.laneRows || []));
      const laneH = Math.min(6 + MAX_ROWS * ROW_H, Math.max(30, 6 + rows * ROW_H));
      this.laneH = this.options.steadyHeight ? Math.max(this.laneH, laneH) : laneH;
      const height = AXIS_H + Math.max(1, this.lanes.length) * this.laneH + 4;
      if (this.el.style.height !== `${height}px`) {
        this.el.style.height = `${height}px`;
        this._resize();
      }
    }

    // Requests in flight at the same time go on separate rows of their lane.
    _pack() {
      const bars = this.bars;
      const n = bars.n;
      // A lane no longer there (the lanes were set anew before the data): -1, not drawn.
      for (let i = 0; i < n; i++) bars.lane[i] = this.laneIndex.get(bars.laneKey[i]) ?? -1;
      const rowEnds = this.lanes.map(() => []);
      this.laneRows = new Int32Array(this.lanes.length).fill(1);
      for (const i of this._byStart()) {
        const lane = bars.lane[i];
        if (bars.kind[i] === KEEPALIVE || lane < 0) {
          bars.row[i] = -1;
          continue;
        }
        const ends = rowEnds[lane];
        let row = ends.findIndex((end) => end <= bars.start[i]);
        if (row < 0) {
          if (ends.length < MAX_ROWS) row = ends.push(0) - 1;
          else row = ends.indexOf(Math.min(...ends));
        }
        ends[row] = Math.max(ends[row], bars.end[i]);
        bars.row[i] = row;
        if (row + 1 > this.laneRows[lane]) this.laneRows[lane] = row + 1;
      }
    }

    // The bars' indexes by start time (ties in their order): a native sort of numbers
    // that carry the index in their low 20 bits, rather than a sort with a comparator.
    _byStart() {
      const { n, start } = this.bars;
      let sorted = true;
      for (let i = 1; i < n && sorted; i++) sorted = start[i] >= start[i - 1];
      if (sorted || n >= 1 << 20) {
        const order = Array.from({ length: n }, (_, i) => i);
        return sorted ? order : order.sort((a, b) => start[a] - start[b]);
      }
      let first = Infinity;
      for (let i = 0; i < n; i++) if (start[i] < first) first = start[i];
      const keys = new Float64Array(n);
      for (let i = 0; i < n; i++) keys[i] = Math.round((start[i] - first) * 1e4) * (1 << 20) + i;
      keys.sort();
      return keys.map((key) => key % (1 << 20));
    }

    resetHeight() {
      this.laneH = 30;
      this._fit();
    }

    select(id) {
      this.selectedId = id;
      this.requestDraw();
    }

    centerOn(time, id) {
      const span = this.view.to - this.view.from;
      this.selectedId = id === undefined ? this.selectedId : id;
      this.setView(time - span / 2, time + span / 2, true);
    }

    pixelWidth() {
      return Math.max(50, Math.round(this.width - GUTTER));
    }

    // -- drawing -----------------------------------------------------------------------
    requestDraw() {
      if (this.pending) return;
      this.pending = true;
      this.frame = requestAnimationFrame(() => {
        this.pending = false;
        this._draw();
      });
    }

    // Draw now what requestDraw would draw at the next frame: an owner that renders in an
    // animation frame of its own has it drawn in that frame, and the page is composited
    // once, not twice.
    flush() {
      if (!this.pending) return;
      cancelAnimationFrame(this.frame);
      this.pending = false;
      this._draw();
    }

    _resize() {
      const ratio = window.devicePixelRatio || 1;
      const rect = this.el.getBoundingClientRect();
      this.width = Math.max(200, Math.floor(rect.width));
      this.height = Math.max(AXIS_H + this.laneH, Math.floor(rect.height));
      this.canvas.width = Math.floor(this.width * ratio);
      this.canvas.height = Math.floor(this.height * ratio);
      this.canvas.style.width = `${this.width}px`;
      this.canvas.style.height = `${this.height}px`;
      this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      // A canvas given a size is reset: its font is set here, once, not at every draw
      // (setting one parses a CSS font string).
      this.ctx.font = "12px system-ui, sans-serif";
      this.ctx.textBaseline = "middle";
      this.requestDraw();
    }

    x(t) {
      return GUTTER + ((t - this.view.from) / (this.view.to - this.view.from)) * (this.width - GUTTER);
    }

    timeAt(x) {
      return this.view.from + ((x - GUTTER) / (this.width - GUTTER)) * (this.view.to - this.view.from);
    }

    _draw() {
      const ctx = this.ctx;
      const { width, height } = this;
      ctx.clearRect(0, 0, width, height);
      // Lanes.
      this.lanes.forEach((key, i) => {
        const top = AXIS_H + i * this.laneH;
        ctx.fillStyle = i % 2 ? "#ffffff" : "#f6f8fa";
        ctx.fillRect(0, top, width, this.laneH);
        ctx.fillStyle = "#57606a";
        ctx.fillText(key === "server" ? "server only" : `client${key}`, 6, top + this.laneH / 2);
      });
      // Axis.
      const { step, ticks: marks } = ticks(this.view.from, this.view.to, width - GUTTER);
      ctx.strokeStyle = "#d0d7de";
      ctx.fillStyle = "#57606a";
      ctx.beginPath();
      for (const t of marks) {
        const x = Math.round(this.x(t)) + 0.5;
        ctx.moveTo(x, AXIS_H - 4);
        ctx.lineTo(x, height);
      }
      ctx.stroke();
      ctx.textAlign = "center";
      for (const t of marks) ctx.fillText(clock(t, step < 1), this.x(t), AXIS_H / 2);
      ctx.textAlign = "left";
      ctx.save();
      ctx.beginPath();
      ctx.rect(GUTTER, AXIS_H, width - GUTTER, height - AXIS_H);
      ctx.clip();
      if (this.bars) this._drawBars();
      else if (this.counts) this._drawCounts();
      ctx.restore();
      if (this.message) {
        ctx.fillStyle = "#57606a";
        ctx.textAlign = "center";
        ctx.fillText(this.message, GUTTER + (width - GUTTER) / 2, AXIS_H + this.laneH / 2);
        ctx.textAlign = "left";
      }
    }

    _barBox(i) {
      const bars = this.bars;
      const top = AXIS_H + bars.lane[i] * this.laneH + 3;
      const h = (this.laneH - 6) / this.laneRows[bars.lane[i]];
      if (bars.row[i] < 0) return { x0: this.x(bars.start[i]) - 1, x1: this.x(bars.start[i]) + 1, y: top, h: this.laneH - 6 };
      const x0 = this.x(bars.start[i]);
      const x1 = Math.max(this.x(bars.end[i]), x0 + 2);
      return { x0, x1, y: top + bars.row[i] * h, h: Math.max(2, h - 1) };
    }

    _drawBars() {
      const ctx = this.ctx;
      const bars = this.bars;
      const { from, to } = this.view;
      // The visible bars by outcome: one colour at a time keeps thousands of bars cheap.
      const groups = OUTCOMES.map(() => []);
      for (let i = 0; i < bars.n; i++) {
        if (bars.end[i] >= from && bars.start[i] <= to && bars.lane[i] >= 0) groups[bars.kind[i]].push(i);
      }
      const visible = groups.flat();
      // Each bar's box, worked out inline (no object per bar): x0, x1 and the row's y and h.
      const scale = (this.width - GUTTER) / (to - from);
      const x = (t) => GUTTER + (t - from) * scale;
      const y = new Float64Array(bars.n);
      const h = new Float64Array(bars.n);
      for (const i of visible) {
        const top = AXIS_H + bars.lane[i] * this.laneH + 3;
        if (bars.row[i] < 0) {
          y[i] = top;
          h[i] = this.laneH - 6;
        } else {
          const rowH = (this.laneH - 6) / this.laneRows[bars.lane[i]];
          y[i] = top + bars.row[i] * rowH;
          h[i] = Math.max(2, rowH - 1);
        }
      }
      groups.forEach((group, kind) => {
        ctx.fillStyle = COLOURS[OUTCOMES[kind]];
        for (const i of group) {
          const x0 = x(bars.start[i]);
          if (bars.row[i] < 0) ctx.fillRect(x0 - 1, y[i], 2, h[i]);
          else ctx.fillRect(x0, y[i], Math.max(x(bars.end[i]) - x0, 2), h[i]);
        }
      });
      // The server's side inside each bar: its delay darker, an ignored request's arrival marked.
      ctx.fillStyle = "rgba(0, 0, 0, 0.38)";
      const [, received, sent] = bars.times;
      for (const i of visible) {
        if (bars.row[i] < 0 || received[i] === null) continue;
        const kind = bars.kind[i];
        if (sent[i] !== null && kind !== LATE) {
          const x0 = x(received[i]);
          ctx.fillRect(x0, y[i] + h[i] * 0.25, Math.max(1, x(sent[i]) - x0), h[i] * 0.5);
        } else if (kind === TIMED_OUT || kind === IGNORED) {
          ctx.fillRect(x(received[i]) - 1, y[i], 2, h[i]);
        }
      }
      const selected = this.selectedId === null ? -1 : visible.find((i) => bars.id[i] === this.selectedId);
      for (const [index, colour, widthPx] of [[this.hovered, "#1b1f24", 1], [selected, "#0a58ca", 2]]) {
        if (index === undefined || index < 0 || index >= bars.n) continue;
        const box = this._barBox(index);
        ctx.strokeStyle = colour;
        ctx.lineWidth = widthPx;
        ctx.strokeRect(box.x0 - 1, box.y - 1, box.x1 - box.x0 + 2, box.h + 2);
      }
      ctx.lineWidth = 1;
    }

    // More exchanges than fit: per pixel, per lane, a stacked column of outcome counts.
    _drawCounts() {
      const ctx = this.ctx;
      const data = this.counts;
      for (const [key, series] of Object.entries(data.counts)) {
        const lane = this.laneIndex.get(key);
        if (lane === undefined) continue;
        const bottom = AXIS_H + (lane + 1) * this.laneH - 3;
        let max = 1;
        const totals = new Float64Array(data.width);
        for (const counts of Object.values(series)) counts.forEach((n, b) => { totals[b] += n; });
        for (const n of totals) max = Math.max(max, n);
        const stacked = new Float64Array(data.width);
        for (const outcome of OUTCOMES) {
          const counts = series[outcome];
          if (!counts) continue;
          ctx.fillStyle = COLOURS[outcome];
          for (let b = 0; b < counts.length; b++) {
            if (!counts[b]) continue;
            const x0 = this.x(data.from + b * data.bucket);
            const x1 = this.x(data.from + (b + 1) * data.bucket);
            const h = (counts[b] / max) * (this.laneH - 6);
            ctx.fillRect(x0, bottom - stacked[b] - h, Math.max(1, x1 - x0), h);
            stacked[b] += h;
          }
        }
      }
    }

    // -- interaction -------------------------------------------------------------------
    _listen() {
      const canvas = this.canvas;
      if (window.ResizeObserver) {
        new ResizeObserver(() => {
          const before = this.width;
          this._resize();
          if (Math.abs(before - this.width) > 1 && this.options.onView) {
            this.options.onView(this.view.from, this.view.to, false);
          }
        }).observe(this.el);
      }
      canvas.addEventListener("wheel", (event) => {
        event.preventDefault();
        const rect = canvas.getBoundingClientRect();
        this.zoom(Math.exp(event.deltaY * 0.0015), this.timeAt(event.clientX - rect.left));
      }, { passive: false });
      canvas.addEventListener("mousedown", (event) => {
        this.drag = { x: event.clientX, view: { ...this.view }, moved: false };
        this.el.focus({ preventScroll: true });
      });
      window.addEventListener("mousemove", (event) => {
        if (!this.drag) return;
        const dx = event.clientX - this.drag.x;
        if (Math.abs(dx) > 3) this.drag.moved = true;
        if (!this.drag.moved) return;
        const shift = (dx / (this.width - GUTTER)) * (this.drag.view.to - this.drag.view.from);
        this.setView(this.drag.view.from - shift, this.drag.view.to - shift, true);
      });
      window.addEventListener("mouseup", (event) => {
        if (!this.drag) return;
        const click = !this.drag.moved;
        this.drag = null;
        if (click) {
          const rect = canvas.getBoundingClientRect();
          const index = this.hit(event.clientX - rect.left, event.clientY - rect.top);
          if (index >= 0 && this.options.onSelect) {
            this.selectedId = this.bars.id[index];
            this.requestDraw();
            this.options.onSelect(this.bar(index));
          }
        }
      });
      canvas.addEventListener("mousemove", (event) => {
        if (this.drag && this.drag.moved) return;
        const rect = canvas.getBoundingClientRect();
        const x = event.clientX - rect.left;
        const y = event.clientY - rect.top;
        this.mouse = { x, y };
        const index = this.hit(x, y);
        if (index !== this.hovered) {
          this.hovered = index;
          this.requestDraw();
        }
        this._tooltip(index, x, y);
      });
      canvas.addEventListener("mouseleave", () => {
        this.mouse = null;
        this.hovered = -1;
        this.tooltip.hidden = true;
        this.requestDraw();
      });
      this.el.addEventListener("keydown", (event) => {
        const span = this.view.to - this.view.from;
        const middle = (this.view.from + this.view.to) / 2;
        const keys = {
          ArrowLeft: () => this.setView(this.view.from - span * 0.2, this.view.to - span * 0.2, true),
          ArrowRight: () => this.setView(this.view.from + span * 0.2, this.view.to + span * 0.2, true),
          "+": () => this.zoom(1 / 1.5, middle),
          "=": () => this.zoom(1 / 1.5, middle),
          "-": () => this.zoom(1.5, middle),
          _: () => this.zoom(1.5, middle),
        };
        if (keys[event.key]) {
          event.preventDefault();
          keys[event.key]();
        } else if (this.options.onKey && this.options.onKey(event.key)) {
          event.preventDefault();
        }
      });
    }

    zoom(factor, around) {
      const { from, to } = this.view;
      this.setView(around - (around - from) * factor, around + (to - around) * factor, true);
    }

    // The bar (or keepalive tick) under a point, or -1.
    hit(x, y) {
      const bars = this.bars;
      if (!bars || y < AXIS_H) return -1;
      const lane = Math.floor((y - AXIS_H) / this.laneH);
      let best = -1;
      let bestDistance = 4;
      for (let i = 0; i < bars.n; i++) {
        if (bars.lane[i] !== lane) continue;
        const box = this._barBox(i);
        if (y < box.y - 1 || y > box.y + box.h + 1) continue;
        const distance = x < box.x0 ? box.x0 - x : x > box.x1 ? x - box.x1 : 0;
        // Where bars overlap (more requests in flight than a lane has rows), the one drawn
        // last, on top, is the one seen under the mouse: by outcome, then by order.
        const onTop = best < 0 || bars.kind[i] > bars.kind[best] || (bars.kind[i] === bars.kind[best] && i > best);
        if (distance < bestDistance || (distance === 0 && bestDistance === 0 && onTop)) {
          best = i;
          bestDistance = distance;
        }
      }
      return best;
    }

    // One bar as an exchange, in the API's words.
    bar(i) {
      const b = this.bars;
      const [clientSent, serverReceived, serverSent, clientDone] = b.times.map((column) => column[i]);
      return {
        id: b.id[i], t: b.t[i], client: b.client[i], outcome: b.outcome[i], request: b.request[i],
        response: b.response[i], peer: b.peer[i],
        times: { client_sent: clientSent, server_received: serverReceived, server_sent: serverSent, client_done: clientDone },
      };
    }

    _tooltip(index, x, y) {
      const tip = this.tooltip;
      if (index < 0) {
        if (!tip.hidden) tip.hidden = true;
        return;
      }
      const e = this.bar(index);
      const wire = wireLines(e);
      const t = e.times;
      const rows = [];
      const who = e.client === null ? "no client logged it" : `client${e.client}`;
      rows.push([`${who}${e.request !== null ? ` · request ${e.request}` : ""}`, e.outcome, `outcome-${e.outcome.replace(" ", "-")}`]);
      if (wire.request) rows.push(["client → server", wire.request, "wire"]);
      if (e.outcome === "timed out" || e.outcome === "ignored") {
        rows.push(["server → client", "nothing: the server ignored it", "wire"]);
      } else if (wire.response) rows.push(["server → client", wire.response, "wire"]);
      if (t.client_sent !== null) rows.push(["client sent", clock(t.client_sent)]);
      if (t.server_received !== null) rows.push(["server received", clock(t.server_received)]);
      if (t.server_sent !== null) rows.push(["server sent", clock(t.server_sent)]);
      if (t.client_done !== null) {
        rows.push([e.outcome === "timed out" ? "client timed out" : "client received", clock(t.client_done)]);
      }
      if (e.outcome === "answered" && t.client_sent !== null && t.client_done !== null) {
        rows.push(["round trip", `${Math.round((t.client_done - t.client_sent) * 1000)} ms`]);
      }
      if (t.server_sent !== null && t.server_received !== null && e.outcome !== "late") {
        rows.push(["server delay", `${Math.round((t.server_sent - t.server_received) * 1000)} ms`]);
      }
      if (e.outcome === "timed out" && t.client_sent !== null && t.client_done !== null) {
        rows.push(["waited", `${Math.round((t.client_done - t.client_sent) * 1000)} ms`]);
      }
      const table = document.createElement("table");
      for (const [label, value, kind] of rows) {
        const tr = table.insertRow();
        const th = document.createElement("th");
        th.textContent = label;
        const td = tr.insertCell();
        td.textContent = value;
        if (kind) td.className = kind;
        tr.prepend(th);
      }
      tip.replaceChildren(table);
      tip.hidden = false;
      const left = Math.min(x + 14, this.width - tip.offsetWidth - 4);
      tip.style.left = `${Math.max(0, left)}px`;
      tip.style.top = `${y + 14}px`;
    }
  }

  window.pingpongTimeline = { Timeline, OUTCOMES, COLOURS, clock, dateTime, duration, ticks, uplotTimeAxis, wireLines };
})();
