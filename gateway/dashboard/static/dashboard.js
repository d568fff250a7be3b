// otelgate dashboard: live regions, action buttons and JSON forms. Our own code, no libraries.
"use strict";
(function () {
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const csrf = meta("csrf-token");
  const interval = Math.max(1000, parseInt(meta("refresh-ms"), 10) || 5000);
  let timer = null;
  let failures = 0;

  function notice(text, ok) {
    const box = document.getElementById("notice");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("ok", !!ok);
    box.hidden = !text;
  }

  function liveState(text, stale) {
    const el = document.getElementById("live-state");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("stale", !!stale);
  }

  // What identifies a control across a swap: its id, or what it does (the URL it posts to or
  // opens), with its text for controls that share a URL.
  function identity(el) {
    if (!el || el === document.body) return null;
    if (el.id) return `#${el.id}`;
    const does = el.getAttribute("data-key") || el.getAttribute("data-post") ||
      el.getAttribute("data-delete") || el.getAttribute("href") || "";
    return `${el.tagName}|${does}|${el.textContent.trim()}`;
  }

  // Replace each [data-live] region whose content changed, keeping keyboard focus in place.
  function swap(doc) {
    const active = document.activeElement;
    const focused = identity(active);
    let changed = 0;
    for (const fresh of doc.querySelectorAll("[data-live][id]")) {
      const current = document.getElementById(fresh.id);
      if (current && current.innerHTML !== fresh.innerHTML) {
        const hadFocus = current.contains(active);
        current.innerHTML = fresh.innerHTML;
        changed += 1;
        if (hadFocus && focused) {
          const same = [...current.querySelectorAll("a, button, input, select, textarea, summary")]
            .find((el) => identity(el) === focused);
          if (same) same.focus({ preventScroll: true });
        }
      }
    }
    document.dispatchEvent(new CustomEvent("otelgate:refreshed", { detail: { changed } }));
  }

  async function refresh() {
    if (!document.querySelector("[data-live]")) return;
    try {
      const res = await fetch(location.pathname + location.search, {
        headers: { "X-Otelgate-Live": "1" }, cache: "no-store", credentials: "same-origin",
      });
      if (res.redirected && new URL(res.url).pathname === "/ui/login") {
        location.assign(res.url);
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      swap(new DOMParser().parseFromString(await res.text(), "text/html"));
      failures = 0;
      liveState(`live · ${new Date().toISOString().slice(0, 19).replace("T", " ")} UTC`, false);
    } catch (err) {
      failures += 1;
      liveState(`connection lost (${err.message}), retrying`, true);
    }
  }

  function schedule() {
    clearTimeout(timer);
    const wait = failures ? Math.min(interval * 2 ** failures, 60000) : interval;
    timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, wait);
  }

  async function send(url, method, body) {
    const res = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!res.ok) {
      let detail = `HTTP ${res.status}`;
      try {
        const data = await res.json();
        if (data && data.detail) detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      } catch (_) { /* not JSON */ }
      throw new Error(res.status === 403 ? `Not allowed: ${detail}` : detail);
    }
    return res.status === 204 ? null : res.json();
  }

  // <button data-post="/alerts/ID/ack" data-body='{"by": "..."}' data-done="Acknowledged">
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-post], button[data-delete]");
    if (!button) return;
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const method = button.dataset.post ? "POST" : "DELETE";
    const url = button.dataset.post || button.dataset.delete;
    button.disabled = true;
    try {
      await send(url, method, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
      notice(button.dataset.done || "Done", true);
      await refresh();
    } catch (err) {
      notice(err.message, false);
    } finally {
      button.disabled = false;
    }
  });

  // <form data-api="/silences" data-method="POST">: fields become a JSON object; a field
  // named "x[]" becomes a list (one item per non-empty line), type=number a number.
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-api]");
    if (!form) return;
    event.preventDefault();
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled || field.type === "submit") continue;
      const value = field.value.trim();
      if (!value) continue;
      if (field.name.endsWith("[]")) {
        body[field.name.slice(0, -2)] = value.split("\n").map((s) => s.trim()).filter(Boolean);
      } else {
        body[field.name] = field.type === "number" ? Number(value) : value;
      }
    }
    try {
      await send(form.dataset.api, form.dataset.method || "POST", body);
      notice(form.dataset.done || "Saved", true);
      form.reset();
      await refresh();
    } catch (err) {
      notice(err.message, false);
    }
  });

  // <input data-filter="table-id">: hide the table's body rows that do not contain the text.
  function applyFilters() {
    for (const input of document.querySelectorAll("input[data-filter]")) {
      const table = document.getElementById(input.dataset.filter);
      if (!table) continue;
      const wanted = input.value.trim().toLowerCase();
      for (const row of table.tBodies[0] ? table.tBodies[0].rows : []) {
        row.hidden = !!wanted && !row.textContent.toLowerCase().includes(wanted);
      }
    }
  }
  document.addEventListener("input", (event) => {
    if (event.target.matches("input[data-filter]")) applyFilters();
  });
  document.addEventListener("otelgate:refreshed", applyFilters);

  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  window.otelgate = { refresh, notice, send };
  schedule();
})();
