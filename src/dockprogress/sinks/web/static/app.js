// dockprogress dashboard: keeps one WebSocket to /ws, renders one card per task.
//
// Protocol (see sinks/web/hub.py): {"type":"snapshot","heartbeat":s,"tasks":[ENTRY]} first,
// then {"type":"tasks","tasks":[ENTRY]} updates and {"type":"heartbeat"} when idle, where
// ENTRY = {first_ts, cancellable, stale?, event}; tasks are keyed by the event's node and task
// (two machines may both run "pull:app"); a running task of a silent node comes with
// stale: true and shows "stale". Every text that came from a task is put in the page
// with textContent, never as HTML: container output is not trusted.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  // Seconds after which a finished task fades (?fade=2 in tests).
  const FADE_MS = 1000 * Number(params.get("fade") || 20);
  const UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

  const token = readToken();
  const tasks = new Map(); // node + "\n" + task id -> {entry, el, fadeTimer}
  const list = document.getElementById("tasks");
  const template = document.getElementById("task-template");
  const statusEl = document.getElementById("status");
  let socket = null;
  let attempt = 0;
  let heartbeatMs = 10000;
  let lastMessage = 0;
  let renderQueued = false;
  const dirty = new Set();

  document.getElementById("here").textContent = location.origin;

  // ------------------------------------------------------------- numbers and text
  // The same rules as dockprogress.humanize, so the page and the terminal agree.

  function size(bytes) {
    if (!Number.isFinite(bytes)) return "?";
    let value = Math.max(bytes, 0);
    let unit = 0;
    const rounded = (v) => (v < 9.95 ? Math.round(v * 10) / 10 : Math.round(v));
    while (unit < UNITS.length - 1 && rounded(value) >= 1000) {
      value /= 1000;
      unit += 1;
    }
    if (unit === 0) return `${Math.floor(value)} B`;
    return value < 9.95 ? `${value.toFixed(1)} ${UNITS[unit]}` : `${value.toFixed(0)} ${UNITS[unit]}`;
  }

  function amount(value) {
    if (!Number.isFinite(value)) return "?";
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  function duration(seconds) {
    if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "";
    const whole = Math.ceil(seconds - 1e-9);
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = whole % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  }

  function readToken() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const given = hash.get("token");
    if (given) {
      sessionStorage.setItem("dockprogress-token", given);
      // Keep the token out of the address bar (and out of screenshots and history).
      history.replaceState(null, "", location.pathname + location.search);
      return given;
    }
    return sessionStorage.getItem("dockprogress-token");
  }

  // ----------------------------------------------------------------- connection

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    setStatus(attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(`${scheme}//${location.host}/ws${query}`);
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      lastMessage = Date.now();
      setStatus("live");
    };
    ws.onmessage = (message) => {
      lastMessage = Date.now();
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type === "snapshot") {
        heartbeatMs = 1000 * (data.heartbeat || 10);
        applySnapshot(data.tasks || []);
      } else if (data.type === "tasks") {
        for (const entry of data.tasks || []) applyEntry(entry);
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      attempt += 1;
      setStatus("reconnecting");
      // Exponential backoff with jitter, capped, so a restarting server is not hammered.
      const delay = Math.min(8000, 400 * 2 ** Math.min(attempt - 1, 5)) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
    ws.onerror = () => ws.close();
  }

  // A server that vanished without closing (suspended laptop, dead proxy) is noticed by the
  // missing heartbeats.
  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessage > 3 * heartbeatMs) {
      socket.close();
    }
  }, 1000);

  function setStatus(state) {
    statusEl.dataset.state = state;
    statusEl.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…" }[state];
  }

  // ---------------------------------------------------------------------- state

  function applySnapshot(entries) {
    const seen = new Set();
    for (const entry of entries) {
      seen.add(keyOf(entry));
      applyEntry(entry);
    }
    for (const [id, item] of tasks) {
      if (!seen.has(id)) {
        clearTimeout(item.fadeTimer);
        item.el.remove();
        tasks.delete(id);
      }
    }
    scheduleRender();
  }

  function keyOf(entry) {
    return `${entry.event.node || ""}\n${entry.event.task}`;
  }

  function applyEntry(entry) {
    const id = keyOf(entry);
    let item = tasks.get(id);
    if (!item) {
      item = { entry, el: createCard(id, entry.event), fadeTimer: null };
      tasks.set(id, item);
    }
    item.entry = entry;
    dirty.add(id);
    scheduleRender();
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    // rAF batches bursts into one layout; the timeout keeps hidden tabs current too.
    const run = () => {
      if (!renderQueued) return;
      renderQueued = false;
      render();
    };
    requestAnimationFrame(run);
    setTimeout(run, 250);
  }

  function order(a, b) {
    const ea = a.entry.event;
    const eb = b.entry.event;
    // Lower priority number first (as documented in events.py), then start time.
    return (ea.priority - eb.priority) || (a.entry.first_ts - b.entry.first_ts) || (ea.task < eb.task ? -1 : 1);
  }

  function render() {
    for (const id of dirty) {
      const item = tasks.get(id);
      if (item) renderCard(item);
    }
    dirty.clear();
    const sorted = [...tasks.values()].sort(order);
    sorted.forEach((item, index) => {
      if (list.children[index] !== item.el) list.insertBefore(item.el, list.children[index] || null);
    });
    document.getElementById("empty").hidden = tasks.size > 0;
    renderSummary();
  }

  function renderSummary() {
    const counts = {};
    for (const { entry } of tasks.values()) {
      const ended = ["done", "error", "cancelled"].includes(entry.event.state);
      const state = entry.stale && !ended ? "stale" : entry.event.state;
      counts[state] = (counts[state] || 0) + 1;
    }
    const words = ["running", "pending", "stale", "done", "error", "cancelled"]
      .filter((state) => counts[state])
      .map((state) => `${counts[state]} ${state}`);
    document.getElementById("summary").textContent = words.join(" · ");
    const active = (counts.running || 0) + (counts.pending || 0);
    document.title = active ? `(${active}) dockprogress` : "dockprogress";
  }

  // ---------------------------------------------------------------------- cards

  function createCard(id, ev) {
    const el = template.content.firstElementChild.cloneNode(true);
    el.dataset.key = id;
    el.dataset.task = ev.task;
    el.dataset.node = ev.node || "";
    el.querySelector(".cancel").addEventListener("click", () => cancelTask(ev.task, el));
    return el;
  }

  function setText(el, selector, text) {
    const node = el.querySelector(selector);
    if (node.textContent !== text) node.textContent = text;
    return node;
  }

  function renderCard(item) {
    const { entry, el } = item;
    const ev = entry.event;
    const download = ev.kind === "download";
    const ended = ["done", "error", "cancelled"].includes(ev.state);
    el.dataset.state = ev.state;
    el.dataset.kind = ev.kind;
    const stale = Boolean(entry.stale) && !ended;
    el.dataset.stale = stale ? "true" : "false";

    const prefix = `${ev.operation}:`;
    setText(el, ".op", ev.operation);
    setText(el, ".name", ev.task.startsWith(prefix) ? ev.task.slice(prefix.length) : ev.task).title = ev.task;
    setText(el, ".node", ev.node || "").title = ev.node ? `node ${ev.node}` : "";
    setText(el, ".state", stale ? "stale" : ev.state).title = stale ? "no word from this node lately" : "";

    const bar = el.querySelector(".bar");
    const percent = ev.percent;
    bar.classList.toggle("indeterminate", percent == null && !ended);
    bar.setAttribute("aria-valuenow", percent == null ? "" : String(Math.round(percent)));
    el.querySelector(".fill").style.width = `${percent == null ? (ended ? 100 : 0) : percent}%`;

    const amountText = download
      ? `${size(ev.current)} / ${ev.total == null ? "?" : size(ev.total)}`
      : ev.total == null && ev.current === 0
        ? ""
        : `${amount(ev.current)} / ${ev.total == null ? "?" : amount(ev.total)}`;
    setText(el, ".amount", amountText);
    setText(el, ".percent", percent == null ? "" : `${percent.toFixed(percent < 100 ? 1 : 0)}%`);
    // A log task's "speed" is milestone points per second: no one wants to read that.
    const speed = ev.speed == null || ended || ev.operation === "logs" ? "" : download ? `${size(ev.speed)}/s` : `${amount(ev.speed)}/s`;
    setText(el, ".speed", speed);
    const eta = ended ? "" : duration(ev.eta);
    setText(el, ".eta", eta ? `ETA ${eta}` : "");
    setText(el, ".desc", ev.description || "");

    // The last log line that matched a milestone, and any stall warning: container text.
    const detail = ev.detail || {};
    const lastLines = Array.isArray(detail.last_lines) ? detail.last_lines : [];
    const output = ev.operation === "build" && lastLines.length ? lastLines[lastLines.length - 1] : null;
    const line = [detail.warning, detail.line, output].filter((t) => typeof t === "string" && t).join(" — ");
    const lineEl = el.querySelector(".line");
    lineEl.hidden = !line;
    if (lineEl.textContent !== line) lineEl.textContent = line;

    const error = el.querySelector(".error");
    const message = ev.state === "error" || ev.state === "cancelled" ? ev.error || "" : "";
    error.hidden = !message;
    if (error.textContent !== message) error.textContent = message;

    const button = el.querySelector(".cancel");
    button.hidden = !entry.cancellable || ended;

    renderLayers(el, ev);

    if (ended && !item.fadeTimer) {
      item.fadeTimer = setTimeout(() => el.classList.add("faded"), FADE_MS);
    } else if (!ended && item.fadeTimer) {
      clearTimeout(item.fadeTimer);
      item.fadeTimer = null;
      el.classList.remove("faded");
    }
  }

  // The rows under a card: a pull's or a push's layers, a build's steps.
  const DONE_ROWS = new Set(["complete", "present", "pushed", "exists", "mounted", "done", "cached"]);
  const NOT_SENT = new Set(["present", "exists", "mounted"]); // not moved by this task

  function rowsOf(ev) {
    const detail = ev.detail || {};
    if ((ev.operation === "pull" || ev.operation === "push") && detail.layers) {
      const layers = detail.layers;
      const ids = Object.keys(layers);
      const skipped = ids.filter((id) => NOT_SENT.has(layers[id].state)).length;
      const note = ev.operation === "pull" ? "already present" : "already in the registry";
      return {
        summary: `${ids.length} layers${skipped ? ` (${skipped} ${note})` : ""}`,
        heads: ["layer", "state", ev.operation === "pull" ? "downloaded" : "sent"],
        rows: ids.map((id) => {
          const layer = layers[id];
          const sizes = NOT_SENT.has(layer.state)
            ? layer.total == null ? "" : size(layer.total)
            : layer.total == null ? size(layer.current || 0) : `${size(layer.current || 0)} / ${size(layer.total)}`;
          const fraction = DONE_ROWS.has(layer.state) ? 1 : layer.total ? Math.min((layer.current || 0) / layer.total, 1) : 0;
          return { key: id, state: layer.state, cells: [id, layer.state, sizes], fraction };
        }),
      };
    }
    if (ev.operation === "build" && Array.isArray(detail.steps)) {
      const steps = detail.steps;
      const cached = steps.filter((step) => step.state === "cached").length;
      return {
        summary: `${steps.length} steps${cached ? ` (${cached} cached)` : ""}`,
        heads: ["step", "state", "time"],
        rows: steps.map((step) => {
          const bytes = step.total ? ` ${size(step.current || 0)} / ${size(step.total)}` : "";
          const time = step.seconds == null ? "" : `${step.seconds.toFixed(1)} s`;
          const fraction = DONE_ROWS.has(step.state) ? 1 : step.total ? Math.min((step.current || 0) / step.total, 1) : 0;
          return { key: `${step.n}. ${step.text || ""}`, state: step.state, cells: [`${step.n}. ${step.text || ""}`, step.state, `${time}${bytes}`], fraction };
        }),
      };
    }
    return null;
  }

  function renderLayers(el, ev) {
    const details = el.querySelector(".layers");
    const table = rowsOf(ev);
    details.hidden = !table || table.rows.length === 0;
    if (details.hidden) return;
    setText(details, "summary", table.summary);
    if (!details.open) return; // the rows are built when someone looks at them
    const heads = details.querySelectorAll("thead th");
    table.heads.forEach((text, index) => {
      if (heads[index].textContent !== text) heads[index].textContent = text;
    });
    const body = details.querySelector("tbody");
    while (body.rows.length > table.rows.length) body.deleteRow(-1);
    table.rows.forEach((item, index) => {
      const row = body.rows[index] || makeLayerRow(body);
      row.dataset.state = item.state;
      item.cells.forEach((text, cell) => {
        if (row.cells[cell].textContent !== text) row.cells[cell].textContent = text;
      });
      row.cells[3].firstChild.firstChild.style.width = `${(100 * item.fraction).toFixed(1)}%`;
    });
  }

  function makeLayerRow(body) {
    const row = body.insertRow();
    for (let i = 0; i < 4; i += 1) row.insertCell();
    row.cells[2].className = "num";
    row.cells[3].className = "mini";
    const track = document.createElement("div");
    track.appendChild(document.createElement("div"));
    row.cells[3].appendChild(track);
    return row;
  }

  // Re-render a card's rows (layers, steps) as soon as its list is opened.
  list.addEventListener(
    "toggle",
    (event) => {
      const card = event.target.closest && event.target.closest(".task");
      const item = card && tasks.get(card.dataset.key);
      if (item) renderLayers(card, item.entry.event);
    },
    true,
  );

  async function cancelTask(id, el) {
    const button = el.querySelector(".cancel");
    button.disabled = true;
    button.textContent = "Cancelling…";
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      const response = await fetch(`/api/tasks/${encodeURIComponent(id)}/cancel`, {
        method: "POST",
        headers,
        body: "{}",
      });
      if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    } catch (err) {
      const error = el.querySelector(".error");
      error.hidden = false;
      error.textContent = `cancel failed: ${err.message}`;
      button.disabled = false;
      button.textContent = "Cancel";
    }
  }

  connect();
})();
