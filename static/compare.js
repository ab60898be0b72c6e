// pingpong: runs side by side — settings and totals in one table with the differences
// marked, round-trip distributions (CDF) and request rates overlaid. Plain JS.
"use strict";

(() => {
  const $ = (selector) => document.querySelector(selector);
  const PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#9a6700", "#bf3989", "#0550ae", "#57606a"];
  const ids = (new URLSearchParams(location.search).get("ids") || "").split(",").filter(Boolean);
  const cell = (tag, value, className) => {
    const node = document.createElement(tag);
    node.textContent = value === null || value === undefined ? "—" : String(value);
    if (className) node.className = className;
    return node;
  };
  const show = (value) => (Array.isArray(value) ? value.join("–") : value);

  function status(kind, label) {
    const node = $("#compare-status");
    node.dataset.status = kind;
    node.textContent = label;
  }

  function render(data) {
    const head = document.createElement("tr");
    head.append(cell("th", ""));
    data.runs.forEach((run, i) => {
      const th = document.createElement("th");
      th.scope = "col";
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(run.id)}`;
      link.textContent = run.id;
      link.style.color = PALETTE[i % PALETTE.length];
      th.append(link);
      head.append(th);
    });
    $("#compare-head").replaceChildren(head);
    const rows = [];
    const section = (title) => {
      const tr = document.createElement("tr");
      const th = cell("th", title);
      th.colSpan = data.runs.length + 1;
      tr.append(th);
      rows.push(tr);
    };
    const add = (label, values, differs) => {
      const tr = document.createElement("tr");
      if (differs) tr.className = "diff";
      tr.dataset.key = label;
      const th = cell("th", differs ? `${label} ≠` : label);
      th.scope = "row";
      tr.append(th, ...values.map((v) => cell("td", show(v))));
      rows.push(tr);
    };
    add("state", data.runs.map((r) => r.state), false);
    add("check", data.runs.map((r) => (r.check === null ? "—" : r.check ? "pass" : "fail")), false);
    add("elapsed, s", data.runs.map((r) => r.elapsed), false);
    section("settings");
    const settingKeys = Array.from(new Set(data.runs.flatMap((r) => Object.keys(r.settings || {}))));
    for (const key of settingKeys) {
      add(key, data.runs.map((r) => (r.settings || {})[key]), data.differences.settings.includes(key));
    }
    section("totals");
    for (const key of Object.keys(data.runs[0].totals)) {
      add(key, data.runs.map((r) => r.totals[key]), data.differences.totals.includes(key));
    }
    section("round trip, ms");
    for (const key of ["min", "avg", "p50", "p95", "max"]) {
      const values = data.runs.map((r) => (r.round_trip_ms ? r.round_trip_ms[key] : null));
      add(key, values, new Set(values.map(String)).size > 1);
    }
    $("#compare-body").replaceChildren(...rows);

    const width = (selector) => Math.max(300, $(selector).clientWidth);
    const series = data.runs.map((run, i) => ({ label: run.id, stroke: PALETTE[i % PALETTE.length], spanGaps: true }));
    const cdf = uPlot.join(data.runs.map((r) => [r.cdf.map((p) => p[0]), r.cdf.map((p) => p[1])]));
    new uPlot({
      width: width("#chart-cdf"), height: 240, legend: { live: true },
      series: [{ label: "round trip, ms" }, ...series],
      scales: { x: { time: false }, y: { range: [0, 1] } },
    }, cdf, $("#chart-cdf"));
    const rates = uPlot.join(data.runs.map((r) => [r.rates.map((p) => p[0]), r.rates.map((p) => p[1])]));
    new uPlot({
      width: width("#chart-compare-rates"), height: 240, legend: { live: true },
      series: [{ label: "seconds from start" }, ...series],
      scales: { x: { time: false } },
    }, rates, $("#chart-compare-rates"));
  }

  async function start() {
    if (ids.length < 2) {
      status("error", "pick at least two runs in the History");
      $("#compare-error").textContent = "Pick two or more runs in the dashboard's History, then Compare.";
      return;
    }
    try {
      const response = await fetch(`/api/compare?ids=${ids.map(encodeURIComponent).join(",")}`);
      const data = await response.json();
      if (!response.ok) {
        const detail = Array.isArray(data.detail) ? data.detail.map((d) => d.msg).join("; ") : data.detail;
        throw new Error(detail);
      }
      render(data);
      status("past", `${data.runs.length} runs`);
    } catch (error) {
      status("error", "could not compare");
      $("#compare-error").textContent = error.message;
    }
  }

  start();
})();
