// dockprogress dashboard: keeps one WebSocket to /ws, shows the tasks grouped by node.
//
// Protocol (see sinks/web/hub.py): {"type":"snapshot","heartbeat":s,"tasks":[ENTRY]} first,
// then {"type":"tasks","tasks":[ENTRY]} updates and {"type":"heartbeat"} when idle, where
// ENTRY = {first_ts, cancellable, stale?, event}; tasks are keyed by the event's node and task
// (two machines may both run "pull:app"); a running task of a silent node comes with
// stale: true and shows "stale". Every text that came from a task is put in the page
// with textContent, never as HTML: container output is not trusted.
//
// Built to stay usable with 10,000 tasks (docs/dashboard.md):
// * A message only records the entries and marks them dirty; the page is brought up to date
//   once per animation frame (render), and only the cards of changed tasks are touched.
// * One section per node, its header counting running / pending / stale / done / failed /
//   cancelled tasks; a collapsed section renders no rows at all.
// * Running tasks (and the ones that ended while the page watched, for a while) are cards,
//   at most PAGE per node until "show more" is pressed; finished tasks go to the node's
//   history list, a fixed-row-height list that builds only the rows scrolled into view.
// * A filter box (debounced, kept in the address as #filter=…) narrows every node's cards
//   and history to the tasks whose id, description, node or state contain every word.
// * window.dockprogressStats holds the page's own timings: first render after the
//   snapshot, and the duration of every batch applied (the tests read them).
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  // Seconds after which a finished task fades (?fade=2 in tests), and after which its card
  // gives way to a row in its node's history (?keep=, 5 minutes by default, never before
  // it faded).
  const FADE_MS = 1000 * Number(params.get("fade") || 20);
  const KEEP_MS = Math.max(FADE_MS, 1000 * Number(params.get("keep") || 300));
  // Cards shown per node before "show more".
  const PAGE = Math.max(1, Number(params.get("page") || 100));
  const SPARK_SAMPLES = 60;
  const HISTORY_ROW = 28; // px, the fixed height of a history row (see style.css)
  const UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
  const ENDED = new Set(["done", "error", "cancelled"]);
  const CATS = ["running", "pending", "stale", "done", "error", "cancelled"];
  const CAT_WORD = { running: "running", pending: "pending", stale: "stale", done: "done", error: "failed", cancelled: "cancelled" };
  // Shown in a node's header even at zero: the per-node summary at a glance.
  const ALWAYS = new Set(["running", "stale", "done", "error"]);

  const hashParams = new URLSearchParams(location.hash.slice(1));
  const token = readToken();
  const tasks = new Map(); // node + "\n" + task id -> item (see applyEntry)
  const groups = new Map(); // node -> group (see groupOf)
  const container = document.getElementById("tasks");
  const template = document.getElementById("task-template");
  const groupTemplate = document.getElementById("group-template");
  const statusEl = document.getElementById("status");
  const filterEl = document.getElementById("filter");
  let socket = null;
  let attempt = 0;
  let heartbeatMs = 10000;
  let lastMessage = 0;
  let renderQueued = false;
  let filterTerms = [];
  let filterChanged = false;
  let groupsOrderChanged = false;
  let countsChanged = true;
  const dirty = new Set(); // items whose entry changed since the last render
  const totals = Object.fromEntries(CATS.map((cat) => [cat, 0]));

  // The page's own figures: performance.now() times (ms since navigation) and durations.
  const stats = {
    snapshotTasks: 0, // entries in the first snapshot
    snapshotAt: null, // when the first snapshot arrived
    firstRenderAt: null, // when the render that applied it ended
    firstFrameAt: null, // the next animation frame: its layout and paint are done
    messages: 0,
    entries: 0,
    batches: 0,
    applyMs: [], // duration of each batch applied (render), the last 5000
    messageMs: [], // duration of handling each message (parse, record), the last 5000
  };
  window.dockprogressStats = stats;

  function note(list, value) {
    list.push(value);
    if (list.length > 10000) list.splice(0, list.length - 5000);
  }

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
    const given = hashParams.get("token");
    if (given) {
      sessionStorage.setItem("dockprogress-token", given);
      // Keep the token out of the address bar (and out of screenshots and history).
      hashParams.delete("token");
      history.replaceState(null, "", location.pathname + location.search + hashString());
      return given;
    }
    return sessionStorage.getItem("dockprogress-token");
  }

  function hashString() {
    const text = hashParams.toString();
    return text ? `#${text}` : "";
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
      const started = performance.now();
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type === "snapshot") {
        heartbeatMs = 1000 * (data.heartbeat || 10);
        const entries = data.tasks || [];
        if (stats.snapshotAt === null) {
          stats.snapshotAt = started;
          stats.snapshotTasks = entries.length;
        }
        applySnapshot(entries);
      } else if (data.type === "tasks") {
        for (const entry of data.tasks || []) applyEntry(entry, false);
      } else {
        return;
      }
      stats.messages += 1;
      note(stats.messageMs, performance.now() - started);
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
  //
  // item = {key, node, group, entry, ev, cat, place: "card" | "history", faded, match,
  //         stamp (bumped on every change), drawn (the stamp its card shows), shown (its card
  //         is in the page), el (its card, made when first shown), spark (speed samples),
  //         fadeTimer, keepTimer}

  function applySnapshot(entries) {
    const seen = new Set();
    for (const entry of entries) {
      const item = applyEntry(entry, true);
      if (item) seen.add(item.key);
    }
    for (const [key, item] of tasks) {
      if (!seen.has(key)) forget(item);
    }
    scheduleRender();
  }

  function keyOf(entry) {
    return `${entry.event.node || ""}\n${entry.event.task}`;
  }

  function categoryOf(entry) {
    const state = entry.event.state;
    if (ENDED.has(state)) return state;
    return entry.stale ? "stale" : state === "pending" ? "pending" : "running";
  }

  function applyEntry(entry, fromSnapshot) {
    if (!entry || !entry.event || typeof entry.event.task !== "string") return null;
    stats.entries += 1;
    const key = keyOf(entry);
    const ev = entry.event;
    const ended = ENDED.has(ev.state);
    let item = tasks.get(key);
    if (!item) {
      const group = groupOf(ev.node || "");
      item = {
        key, node: ev.node || "", group, entry, ev, cat: null,
        // A task that had ended before the page connected goes straight to history; one
        // that ends while the page watches stays a card for a while.
        place: ended && fromSnapshot ? "history" : "card",
        faded: false, match: true, stamp: 0, drawn: -1, shown: false, el: null,
        spark: null, fadeTimer: null, keepTimer: null,
      };
      tasks.set(key, item);
      group.members.add(item);
      group.struct = true;
      if (ended) endedNow(item);
    } else {
      const wasEnded = ENDED.has(item.ev.state);
      if (item.entry.first_ts !== entry.first_ts || item.ev.priority !== ev.priority) item.group.struct = true;
      item.entry = entry;
      item.ev = ev;
      if (ended && !wasEnded) endedNow(item);
      else if (!ended && wasEnded) restarted(item);
    }
    const cat = categoryOf(entry);
    if (cat !== item.cat) {
      if (item.cat) count(item.group, item.cat, -1);
      count(item.group, cat, 1);
      if (item.cat && ENDED.has(cat) !== ENDED.has(item.cat)) item.group.struct = true;
      item.cat = cat;
    }
    sample(item);
    item.stamp += 1;
    dirty.add(item);
    scheduleRender();
    return item;
  }

  function count(group, cat, delta) {
    group.counts[cat] += delta;
    totals[cat] += delta;
    group.countsChanged = true;
    countsChanged = true;
  }

  // A task just ended: its card fades, then moves to the history (unless it is there already).
  function endedNow(item) {
    if (item.place !== "card") return;
    clearTimeout(item.fadeTimer);
    clearTimeout(item.keepTimer);
    item.fadeTimer = setTimeout(() => {
      item.faded = true;
      item.stamp += 1;
      dirty.add(item);
      scheduleRender();
    }, FADE_MS);
    item.keepTimer = setTimeout(() => {
      item.place = "history";
      item.group.struct = true;
      item.stamp += 1;
      dirty.add(item);
      scheduleRender();
    }, KEEP_MS);
  }

  // A new run of a task that had ended: a card again, with a fresh sparkline.
  function restarted(item) {
    clearTimeout(item.fadeTimer);
    clearTimeout(item.keepTimer);
    item.fadeTimer = item.keepTimer = null;
    item.faded = false;
    item.spark = null;
    if (item.place !== "card") {
      item.place = "card";
      item.group.struct = true;
    }
  }

  function forget(item) {
    clearTimeout(item.fadeTimer);
    clearTimeout(item.keepTimer);
    tasks.delete(item.key);
    dirty.delete(item);
    const group = item.group;
    group.members.delete(item);
    count(group, item.cat, -1);
    group.struct = true;
    if (item.el) item.el.remove();
    if (group.members.size === 0) {
      group.el.remove();
      groups.delete(group.node);
    }
  }

  // The last SPARK_SAMPLES speeds of a running download, one per distinct event time.
  function sample(item) {
    const ev = item.ev;
    if (ev.kind !== "download" || ev.state !== "running" || !Number.isFinite(ev.speed)) return;
    let spark = item.spark;
    if (!spark) spark = item.spark = { values: new Float32Array(SPARK_SAMPLES), next: 0, size: 0, lastTs: null, drawn: -1, version: 0 };
    if (spark.lastTs === ev.ts) return;
    spark.lastTs = ev.ts;
    spark.values[spark.next] = Math.max(ev.speed, 0);
    spark.next = (spark.next + 1) % SPARK_SAMPLES;
    spark.size = Math.min(spark.size + 1, SPARK_SAMPLES);
    spark.version += 1;
  }

  // --------------------------------------------------------------------- render

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

  // Live tasks first, then the ones that just ended; lower priority number first (as
  // documented in events.py), then start time.
  function order(a, b) {
    const ea = a.ev;
    const eb = b.ev;
    return (
      (ENDED.has(ea.state) ? 1 : 0) - (ENDED.has(eb.state) ? 1 : 0) ||
      (ea.priority || 0) - (eb.priority || 0) ||
      a.entry.first_ts - b.entry.first_ts ||
      (ea.task < eb.task ? -1 : ea.task > eb.task ? 1 : 0)
    );
  }

  // History: the most recently ended first.
  function byEnd(a, b) {
    return b.ev.ts - a.ev.ts || (a.ev.task < b.ev.task ? -1 : a.ev.task > b.ev.task ? 1 : 0);
  }

  // One batch: everything that arrived since the last frame, applied at once.
  function render() {
    const started = performance.now();
    if (filterChanged) {
      filterChanged = false;
      for (const item of tasks.values()) item.match = matches(item);
      for (const group of groups.values()) {
        group.struct = true;
        group.limit = PAGE;
      }
    }
    for (const item of dirty) {
      const group = item.group;
      if (filterTerms.length) {
        const match = matches(item);
        if (match !== item.match) {
          item.match = match;
          group.struct = true;
        }
      }
      if (item.place === "history") group.histDirty = true;
      if (item.shown && item.drawn !== item.stamp) drawCard(item);
    }
    dirty.clear();
    if (groupsOrderChanged) placeGroups();
    let visible = 0;
    for (const group of groups.values()) {
      if (group.struct) layoutGroup(group);
      if (group.countsChanged) renderCounts(group);
      if (!group.el.hidden) visible += 1;
    }
    // Last: an open history list reads its scroll position, which needs a layout.
    for (const group of groups.values()) {
      if (group.histDirty) renderHistory(group);
    }
    if (countsChanged) renderSummary();
    document.getElementById("empty").hidden = tasks.size > 0;
    document.getElementById("nomatch").hidden = !(filterTerms.length && tasks.size && !visible);
    const finished = performance.now();
    stats.batches += 1;
    note(stats.applyMs, finished - started);
    if (stats.firstRenderAt === null && stats.snapshotAt !== null) {
      stats.firstRenderAt = finished;
      requestAnimationFrame(() => {
        stats.firstFrameAt = performance.now();
      });
    }
  }

  function renderSummary() {
    countsChanged = false;
    const words = CATS.filter((cat) => totals[cat]).map((cat) => `${totals[cat]} ${CAT_WORD[cat]}`);
    document.getElementById("summary").textContent = words.join(" · ");
    const active = totals.running + totals.pending;
    document.title = active ? `(${active}) dockprogress` : "dockprogress";
  }

  // ---------------------------------------------------------------- node groups

  const collapsedNodes = new Set(readCollapsed());

  function readCollapsed() {
    try {
      const saved = JSON.parse(localStorage.getItem("dockprogress-collapsed") || "[]");
      return Array.isArray(saved) ? saved.filter((node) => typeof node === "string") : [];
    } catch {
      return [];
    }
  }

  function groupOf(node) {
    let group = groups.get(node);
    if (group) return group;
    const el = groupTemplate.content.firstElementChild.cloneNode(true);
    el.dataset.node = node;
    el.querySelector(".gname").textContent = node || "(no node)";
    group = {
      node,
      el,
      list: el.querySelector("ul.tasks"),
      toggle: el.querySelector(".toggle"),
      more: el.querySelector(".more"),
      history: el.querySelector(".history"),
      hsummary: el.querySelector(".history summary"),
      hscroll: el.querySelector(".hscroll"),
      hspacer: el.querySelector(".hspacer"),
      countEls: Object.fromEntries(CATS.map((cat) => [cat, el.querySelector(`.count[data-cat="${cat}"]`)])),
      barEls: Object.fromEntries(CATS.map((cat) => [cat, el.querySelector(`.gbar [data-cat="${cat}"]`)])),
      members: new Set(),
      shown: [], // the items whose cards are in the list, in order
      histView: [], // the finished items the history lists (filtered), most recent first
      pool: [], // history row elements, reused while scrolling
      spacerHeight: -1,
      counts: Object.fromEntries(CATS.map((cat) => [cat, 0])),
      countsChanged: true,
      struct: true,
      histDirty: false,
      collapsed: collapsedNodes.has(node),
      limit: PAGE,
    };
    const self = group;
    group.toggle.addEventListener("click", () => {
      self.collapsed = !self.collapsed;
      if (self.collapsed) collapsedNodes.add(node);
      else collapsedNodes.delete(node);
      try {
        localStorage.setItem("dockprogress-collapsed", JSON.stringify([...collapsedNodes]));
      } catch {
        // storage may be unavailable (private mode): collapsing still works for this page
      }
      self.struct = true;
      scheduleRender();
    });
    group.more.addEventListener("click", () => {
      self.limit += PAGE;
      self.struct = true;
      scheduleRender();
    });
    group.history.addEventListener("toggle", () => {
      self.histDirty = true;
      scheduleRender();
    });
    group.hscroll.addEventListener(
      "scroll",
      () => {
        self.histDirty = true;
        scheduleRender();
      },
      { passive: true },
    );
    groups.set(node, group);
    groupsOrderChanged = true;
    return group;
  }

  function placeGroups() {
    groupsOrderChanged = false;
    const sorted = [...groups.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    sorted.forEach((group, index) => {
      if (container.children[index] !== group.el) container.insertBefore(group.el, container.children[index] || null);
    });
  }

  // Which cards a node shows, in which order, and its history's rows: run only when its
  // membership, order or the filter changed, never for a mere progress update.
  function layoutGroup(group) {
    group.struct = false;
    const active = [];
    const ended = [];
    for (const item of group.members) (item.place === "card" ? active : ended).push(item);
    active.sort(order);
    ended.sort(byEnd);
    const filtering = filterTerms.length > 0;
    const cards = filtering ? active.filter((item) => item.match) : active;
    const rows = filtering ? ended.filter((item) => item.match) : ended;
    group.histView = rows;
    group.histDirty = true;
    const hidden = filtering && cards.length + rows.length === 0;
    if (group.el.hidden !== hidden) group.el.hidden = hidden;
    group.el.dataset.collapsed = group.collapsed ? "true" : "false";
    group.toggle.setAttribute("aria-expanded", group.collapsed ? "false" : "true");
    setText(group.el, ".gmatch", filtering ? `${cards.length + rows.length} match` : "");

    const want = group.collapsed || hidden ? [] : cards.slice(0, group.limit);
    const wanted = new Set(want);
    for (const item of group.shown) {
      if (wanted.has(item)) continue;
      item.shown = false;
      item.el.remove();
      if (item.place === "history") item.el = null; // rebuilt if it ever runs again
    }
    const list = group.list;
    want.forEach((item, index) => {
      if (!item.el) item.el = createCard(item);
      item.shown = true;
      if (item.drawn !== item.stamp) drawCard(item);
      const at = list.children[index];
      if (at !== item.el) list.insertBefore(item.el, at || null);
    });
    group.shown = want;

    const more = cards.length - group.limit;
    group.more.hidden = group.collapsed || more <= 0;
    if (more > 0) group.more.textContent = `Show ${Math.min(PAGE, more)} more (${more} not shown)`;
    group.history.hidden = group.collapsed || rows.length === 0;
    const word = rows.length === 1 ? "task" : "tasks";
    group.hsummary.textContent = filtering
      ? `History: ${rows.length} of ${ended.length} finished ${word} match`
      : `History: ${rows.length} finished ${word}`;
  }

  function renderCounts(group) {
    group.countsChanged = false;
    for (const cat of CATS) {
      const n = group.counts[cat];
      const el = group.countEls[cat];
      el.hidden = !n && !ALWAYS.has(cat);
      el.dataset.count = String(n);
      const text = `${n} ${CAT_WORD[cat]}`;
      if (el.textContent !== text) el.textContent = text;
      const segment = group.barEls[cat];
      segment.style.flexGrow = String(n);
      segment.hidden = !n;
    }
  }

  // --------------------------------------------------------------------- history
  // A fixed row height and a spacer as tall as every row: only the rows in view (and a few
  // around them) exist, so a node with 10,000 finished tasks costs about 20 rows.

  function renderHistory(group) {
    group.histDirty = false;
    const details = group.history;
    if (details.hidden || !details.open) return;
    const rows = group.histView;
    const scroll = group.hscroll;
    const height = rows.length * HISTORY_ROW;
    if (group.spacerHeight !== height) {
      group.spacerHeight = height;
      group.hspacer.style.height = `${height}px`;
    }
    const view = scroll.clientHeight || 12 * HISTORY_ROW;
    const first = Math.max(0, Math.floor(scroll.scrollTop / HISTORY_ROW) - 4);
    const last = Math.min(rows.length, Math.ceil((scroll.scrollTop + view) / HISTORY_ROW) + 4);
    let used = 0;
    for (let index = first; index < last; index += 1, used += 1) {
      const row = group.pool[used] || makeHistoryRow(group);
      fillHistoryRow(row, rows[index], index);
    }
    for (let index = used; index < group.pool.length; index += 1) {
      if (!group.pool[index].hidden) group.pool[index].hidden = true;
    }
  }

  function makeHistoryRow(group) {
    const row = document.createElement("div");
    row.className = "hrow";
    for (const name of ["h-outcome", "h-name", "h-duration num", "h-ended num"]) {
      const cell = document.createElement("span");
      cell.className = name;
      row.appendChild(cell);
    }
    row.item = null;
    row.stamp = -1;
    row.top = -1;
    group.hscroll.appendChild(row);
    group.pool.push(row);
    return row;
  }

  function fillHistoryRow(row, item, index) {
    if (row.hidden) row.hidden = false;
    const top = index * HISTORY_ROW;
    if (row.top !== top) {
      row.top = top;
      row.style.transform = `translateY(${top}px)`;
    }
    if (row.item === item && row.stamp === item.stamp) return;
    row.item = item;
    row.stamp = item.stamp;
    const ev = item.ev;
    row.dataset.task = ev.task;
    row.dataset.node = item.node;
    row.dataset.state = ev.state;
    const cells = row.children;
    cells[0].textContent = CAT_WORD[item.cat] || ev.state;
    cells[1].textContent = ev.task;
    cells[2].textContent = duration(ev.ts - item.entry.first_ts) || "0:00";
    cells[3].textContent = clockTime(ev.ts);
    const why = ev.state === "done" ? ev.description || "" : ev.error || ev.description || "";
    row.title = why ? `${ev.task}: ${why}` : ev.task;
  }

  function clockTime(ts) {
    if (!Number.isFinite(ts)) return "";
    const at = new Date(ts * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
    if (at.toDateString() === new Date().toDateString()) return time;
    return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${time.slice(0, 5)}`;
  }

  // ---------------------------------------------------------------------- filter

  let filterTimer = null;

  function matches(item) {
    if (!filterTerms.length) return true;
    const ev = item.ev;
    const hay = `${ev.task}\n${ev.description || ""}\n${item.node}\n${item.cat}\n${CAT_WORD[item.cat]}\n${ev.operation}`.toLowerCase();
    return filterTerms.every((term) => hay.includes(term));
  }

  function setFilter(text, keep) {
    const terms = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (terms.join(" ") === filterTerms.join(" ")) return;
    filterTerms = terms;
    filterChanged = true;
    if (keep) {
      const trimmed = text.trim();
      if (trimmed) hashParams.set("filter", trimmed);
      else hashParams.delete("filter");
      history.replaceState(null, "", location.pathname + location.search + hashString());
    }
    scheduleRender();
  }

  filterEl.value = hashParams.get("filter") || "";
  setFilter(filterEl.value, false);
  filterEl.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => setFilter(filterEl.value, true), 150);
  });
  window.addEventListener("hashchange", () => {
    const fresh = new URLSearchParams(location.hash.slice(1));
    if (fresh.get("token")) {
      location.reload(); // a new token: start over with it (readToken stores it)
      return;
    }
    hashParams.delete("filter");
    const text = fresh.get("filter") || "";
    if (text) hashParams.set("filter", text);
    filterEl.value = text;
    setFilter(text, false);
  });

  // ---------------------------------------------------------------------- cards

  function createCard(item) {
    const el = template.content.firstElementChild.cloneNode(true);
    el.dataset.key = item.key;
    el.dataset.task = item.ev.task;
    el.dataset.node = item.node;
    el.querySelector(".cancel").addEventListener("click", () => cancelTask(item.ev.task, el));
    return el;
  }

  function setText(el, selector, text) {
    const node = el.querySelector(selector);
    if (node.textContent !== text) node.textContent = text;
    return node;
  }

  function drawCard(item) {
    item.drawn = item.stamp;
    const { entry, el } = item;
    const ev = entry.event;
    const download = ev.kind === "download";
    const ended = ENDED.has(ev.state);
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

    el.classList.toggle("faded", item.faded);
    drawSpark(item);
    renderLayers(el, ev);
  }

  // ------------------------------------------------------------------ sparkline
  // The speed of a running download over its last SPARK_SAMPLES events, drawn on a canvas:
  // an area under a line across the whole width (a window that fills, then slides), scaled
  // to the highest speed in it.

  const SPARK_W = 96;
  const SPARK_H = 22;
  let sparkColor = null;
  // The line's colour is the theme's: read again (and every sparkline redrawn) when it changes.
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    sparkColor = null;
    for (const item of tasks.values()) {
      if (!item.spark || !item.shown) continue;
      item.spark.drawn = -1;
      item.stamp += 1;
      dirty.add(item);
    }
    scheduleRender();
  });

  function drawSpark(item) {
    const canvas = item.el.querySelector(".spark");
    const spark = item.spark;
    const show = item.ev.kind === "download" && item.ev.state === "running" && spark !== null && spark.size >= 2;
    if (canvas.hidden !== !show) canvas.hidden = !show;
    if (!show || (spark.drawn === spark.version && canvas.dataset.drawn === "true")) return;
    spark.drawn = spark.version;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(SPARK_W * ratio)) {
      canvas.width = Math.round(SPARK_W * ratio);
      canvas.height = Math.round(SPARK_H * ratio);
    }
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, SPARK_W, SPARK_H);
    if (sparkColor === null) {
      sparkColor = getComputedStyle(document.documentElement).getPropertyValue("--running").trim() || "#2f6fde";
    }
    const n = spark.size;
    const start = (spark.next - n + SPARK_SAMPLES) % SPARK_SAMPLES;
    let peak = 0;
    for (let i = 0; i < n; i += 1) peak = Math.max(peak, spark.values[(start + i) % SPARK_SAMPLES]);
    const step = SPARK_W / (n - 1);
    const x = (i) => i * step;
    const y = (i) => {
      const value = spark.values[(start + i) % SPARK_SAMPLES];
      return SPARK_H - 1.5 - (peak > 0 ? (value / peak) * (SPARK_H - 4) : 0);
    };
    context.beginPath();
    context.moveTo(x(0), SPARK_H);
    for (let i = 0; i < n; i += 1) context.lineTo(x(i), y(i));
    context.lineTo(x(n - 1), SPARK_H);
    context.closePath();
    context.globalAlpha = 0.22;
    context.fillStyle = sparkColor;
    context.fill();
    context.globalAlpha = 1;
    context.beginPath();
    for (let i = 0; i < n; i += 1) (i ? context.lineTo : context.moveTo).call(context, x(i), y(i));
    context.lineWidth = 1.5;
    context.lineJoin = "round";
    context.strokeStyle = sparkColor;
    context.stroke();
    canvas.dataset.drawn = "true";
    canvas.dataset.samples = String(n);
    const label = `speed over the last ${n} updates, peak ${size(peak)}/s`;
    canvas.title = label;
    canvas.setAttribute("aria-label", label);
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
  container.addEventListener(
    "toggle",
    (event) => {
      const card = event.target.closest && event.target.closest(".task");
      const item = card && tasks.get(card.dataset.key);
      if (item && item.el === card) renderLayers(card, item.ev);
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
