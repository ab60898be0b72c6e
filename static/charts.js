// pingpong dashboard: the three charts (uPlot), drawn from the page's live state.
// Each keeps a bounded window (the server sends at most 300 points a series) and is
// updated with setData at the batched rate; a new run starts them afresh (reset).
// Time axes read 24-hour HH:MM:SS in the logs' zone (offset), as the tables do.
"use strict";

(() => {
  const PALETTE = ["#0969da", "#1a7f37", "#cf222e", "#8250df", "#9a6700", "#bf3989", "#0550ae", "#57606a"];
  const pad = (n) => String(n).padStart(2, "0");
  // Whole seconds and up: a label never repeats, and labels keep apart (space, px).
  const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

  window.pingpongCharts = {
    rtt: null,
    rttClients: "",
    rates: null,
    delays: null,
    offset: 0, // seconds east of UTC of the logs' local time

    timeLabel(t, withSeconds = true) {
      const d = new Date((t + this.offset) * 1000);
      const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
      return withSeconds ? `${hm}:${pad(d.getUTCSeconds())}` : hm;
    },

    timeAxis() {
      return {
        space: 80,
        incrs: TIME_INCRS,
        values: (_u, splits, _axis, _space, incr) => splits.map((t) => this.timeLabel(t, incr < 60)),
      };
    },

    reset() {
      for (const key of ["rtt", "rates", "delays"]) {
        if (this[key]) this[key].destroy();
        this[key] = null;
      }
      this.rttClients = "";
    },

    size(el) {
      return { width: Math.max(200, el.clientWidth), height: 180 };
    },

    make(el, series, data, extra = {}) {
      return new uPlot({ ...this.size(el), series, legend: { live: false }, ...extra }, data, el);
    },

    // Draw (or update) the three charts from the live part of a snapshot; a chart
    // without data yet says so (empty[key]: what is coming).
    render(live, empty = {}) {
      if (!live) return;
      // Round trip per client: one series per client, joined on time.
      const clients = Object.keys(live.round_trips).sort((a, b) => a - b);
      if (clients.length) {
        const tables = clients.map((c) => {
          const points = live.round_trips[c];
          return [points.map((p) => p[0]), points.map((p) => p[1])];
        });
        const data = uPlot.join(tables);
        const key = clients.join(",");
        if (!this.rtt || this.rttClients !== key) {
          if (this.rtt) this.rtt.destroy();
          const series = [{}].concat(
            clients.map((c, i) => ({
              label: `client${c}`, stroke: PALETTE[i % PALETTE.length], spanGaps: true,
              points: { show: clients.length <= 8, size: 3 }, // many clients: lines only
            })),
          );
          this.rtt = this.make(document.querySelector("#chart-rtt"), series, data,
            { axes: [this.timeAxis(), {}] });
          this.rttClients = key;
        } else {
          this.rtt.setData(data);
        }
      }
      // Per-second counts.
      if (live.rates.length) {
        const r = live.rates;
        const data = [r.map((b) => b.t), r.map((b) => b.requests), r.map((b) => b.answered),
          r.map((b) => b.ignored), r.map((b) => b.timed_out)];
        if (!this.rates) {
          this.rates = this.make(document.querySelector("#chart-rates"), [{},
            { label: "requests", stroke: "#0969da" }, { label: "answered", stroke: "#1a7f37" },
            { label: "ignored", stroke: "#9a6700" }, { label: "timed out", stroke: "#cf222e" }], data,
            { axes: [this.timeAxis(), {}] });
        } else {
          this.rates.setData(data);
        }
      }
      // Histogram of server delays: a bar per bin, drawn from the bin's low edge
      // (align 1), so the x scale runs to the last bin's high edge.
      if (live.delays && live.server && live.server.answered) {
        const d = live.delays;
        const data = [d.counts.map((_, i) => d.low + i * d.width), d.counts];
        if (!this.delays) {
          const edges = (_u, low, lastLow) => [low, lastLow + d.width];
          this.delays = this.make(document.querySelector("#chart-delays"),
            [{ label: "delay ms" }, { label: "answers", stroke: "#0a58ca", fill: "rgba(10,88,202,.25)",
              paths: uPlot.paths.bars({ size: [0.9, 60], align: 1 }), points: { show: false } }],
            data, { scales: { x: { time: false, range: edges },
              y: { range: (_u, _min, max) => [0, Math.max(1, max)] } } });
        } else {
          this.delays.setData(data);
        }
      }
      for (const key of ["rtt", "rates", "delays"]) {
        const note = document.querySelector(`#chart-${key}-empty`);
        const said = empty[key] || "";
        if (note.textContent !== said) note.textContent = said;
        if (note.hidden !== (this[key] !== null)) note.hidden = this[key] !== null;
      }
    },

    resize() {
      for (const [key, id] of [["rtt", "#chart-rtt"], ["rates", "#chart-rates"], ["delays", "#chart-delays"]]) {
        if (this[key]) this[key].setSize(this.size(document.querySelector(id)));
      }
    },
  };
})();
