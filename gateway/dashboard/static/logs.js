// otelgate logs page: the live tail (Server-Sent Events from /ui/logs/tail). Rows are built
// with textContent only: record data never becomes markup.
"use strict";
(function () {
  const toggle = document.getElementById("tail-toggle");
  const pause = document.getElementById("tail-pause");
  const state = document.getElementById("tail-state");
  const body = document.getElementById("logs-body");
  if (!toggle || !pause || !state || !body || !window.EventSource) return;
  const MAX_ROWS = 500;
  const TRACE_ID = /^[0-9a-f]{32}$/;
  const BADGES = new Set(["debug", "info", "warn", "error", "fatal"]);
  let source = null;
  let lastId = null;
  let received = 0;

  function say(text) {
    state.textContent = text;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text !== null) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function addRow(record) {
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    row.className = "logline";
    row.dataset.id = String(record.id);
    const time = document.createElement("time");
    time.dateTime = String(record.time || "");
    time.textContent = String(record.time_text || "");
    cell(row, null, "mono").appendChild(time);
    const badge = document.createElement("span");
    badge.className = BADGES.has(record.severity_class) ? `badge ${record.severity_class}` : "badge";
    badge.textContent = String(record.severity || "");
    cell(row, null).appendChild(badge);
    cell(row, String(record.service || ""));
    cell(row, String(record.body || ""), "body");
    cell(row, String(record.attributes || ""), "muted");
    const traced = cell(row, null);
    if (typeof record.trace_id === "string" && TRACE_ID.test(record.trace_id)) {
      const link = document.createElement("a");
      link.href = `/ui/traces/${record.trace_id}`;
      link.textContent = "trace";
      link.setAttribute("aria-label", `Trace ${record.trace_id}`);
      traced.appendChild(link);
    }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }

  // A stream refused (400, 503) closes the EventSource without saying why: ask once.
  async function reason(url) {
    const control = new AbortController();
    try {
      const res = await fetch(url, { signal: control.signal, credentials: "same-origin" });
      if (res.ok) return "the connection was closed";
      return (await res.text()).slice(0, 300) || `HTTP ${res.status}`;
    } catch (err) {
      return err.message;
    } finally {
      control.abort();
    }
  }

  function url() {
    const target = new URL(toggle.dataset.url || "/ui/logs/tail", location.href);
    if (lastId !== null) target.searchParams.set("after", lastId);
    return target.toString();
  }

  function close() {
    if (source) source.close();
    source = null;
  }

  function open() {
    close();
    const target = url();
    const stream = new EventSource(target);
    source = stream;
    say("Live tail: connecting…");
    stream.onopen = () => say(`Live tail: connected, ${received} new records.`);
    stream.addEventListener("log", (event) => {
      let record;
      try {
        record = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      addRow(record);
      received += 1;
      say(`Live tail: connected, ${received} new records.`);
    });
    stream.addEventListener("closed", (event) => {
      close();
      stop(`Live tail stopped: ${event.data}`);
    });
    stream.onerror = async () => {
      if (stream !== source) return;
      if (stream.readyState === EventSource.CONNECTING) {
        say("Live tail: reconnecting…");
        return;
      }
      close();
      stop(`Live tail stopped: ${await reason(target)}`);
    };
    // "ready" (first) and each record carry the store id to resume after, after a pause.
    for (const kind of ["ready", "log"]) {
      stream.addEventListener(kind, (event) => { if (event.lastEventId) lastId = event.lastEventId; });
    }
  }

  function stop(message) {
    close();
    toggle.setAttribute("aria-pressed", "false");
    pause.setAttribute("aria-pressed", "false");
    pause.disabled = true;
    say(message);
  }

  toggle.addEventListener("click", () => {
    if (toggle.getAttribute("aria-pressed") === "true") {
      stop(`Live tail is off (${received} records received).`);
      return;
    }
    toggle.setAttribute("aria-pressed", "true");
    pause.disabled = false;
    lastId = null;
    received = 0;
    open();
  });

  pause.addEventListener("click", () => {
    if (toggle.getAttribute("aria-pressed") !== "true") return;
    if (pause.getAttribute("aria-pressed") === "true") {
      pause.setAttribute("aria-pressed", "false");
      open();  // resumes after the last record shown
    } else {
      pause.setAttribute("aria-pressed", "true");
      close();
      say(`Live tail paused (${received} records received).`);
    }
  });

  window.addEventListener("pagehide", close);
})();
