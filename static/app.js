"use strict";
// Minimal controls until the full dashboard lands: Start, Stop and the live state word.
const stateEl = document.getElementById("state");
const post = (path, body) =>
  fetch(path, {method: "POST", headers: {"content-type": "application/json"}, body});
document.getElementById("start").addEventListener("click", () => post("/api/start", "{}"));
document.getElementById("stop").addEventListener("click", () => post("/api/stop", ""));
const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
ws.addEventListener("message", (event) => { stateEl.textContent = JSON.parse(event.data).state; });
