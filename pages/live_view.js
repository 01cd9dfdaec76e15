// The live page's self-updating parts (Streamlit components v2, mounted by pages/live.py).
//
// Why: the counter, the state and the source line change every second; redrawing them by
// rerunning the Streamlit page cost one script run per tab per second in the app process
// (15 reruns/s with 10 tabs). Here ONE poller per browser tab reads the stream server's
// /status.json (~2/s, every 5 s while the tab is in the background) and updates the DOM
// itself. Streamlit reruns only when something structural changed (a session started or
// finished, paused/resumed, the count went over the target, a command executed): the panel
// then fires the "update" trigger once. The log comes with the status (read from the database
// once per new count for all viewers), so a new sheet costs no rerun either.
//
// mode "video": the MJPEG <img> (10 frames/s; 1 frame/s while the tab is hidden), the
//               source line and its warning.
// mode "panel": the session state, name, counter and over-target line; the trigger.
// mode "log":   the session's newest count events.
// Labels come translated from Python in `data.labels`; numbers use the page's separators.

const S = window.__msmLive || (window.__msmLive = {
  subs: new Set(), timer: null, last: null, lastAt: 0, fails: 0, url: null, busy: false,
  visibleMs: 500, hiddenMs: 5000,
});

const SETTLE_MS = 700;

function hidden() { return document.visibilityState === "hidden"; }

function schedule(ms) {
  clearTimeout(S.timer);
  S.timer = null;
  if (!S.subs.size) return;
  S.timer = setTimeout(poll, ms === undefined ? (hidden() ? S.hiddenMs : S.visibleMs) : ms);
}

async function poll() {
  if (!S.url || !S.subs.size || S.busy) { schedule(); return; }
  S.busy = true;
  const ctrl = new AbortController();
  const to = setTimeout(() => ctrl.abort(), 3000);
  try {
    const r = await fetch(S.url, { cache: "no-store", signal: ctrl.signal });
    if (!r.ok) throw new Error("HTTP " + r.status);
    S.last = await r.json();
    S.lastAt = Date.now();
    S.fails = 0;
  } catch (e) {
    S.fails += 1;
  } finally {
    clearTimeout(to);
    S.busy = false;
  }
  for (const f of S.subs) {
    try { f(S.last, S.fails); } catch (e) { console.error("msm live view", e); }
  }
  schedule();
}

if (!S.visHooked) {
  S.visHooked = true;
  document.addEventListener("visibilitychange", () => {
    for (const f of S.subs) { try { f.visibility && f.visibility(); } catch (e) { console.error(e); } }
    if (!hidden()) schedule(0);      // back in front: fresh figures at once
  });
}

function fmt(template, args) {
  return String(template).replace(/\{(\w+)\}/g, (m, k) => (k in args ? String(args[k]) : m));
}

function num(x, lang, decimals) {
  if (x === null || x === undefined) return "–";
  const d = decimals || 0;
  let s = Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  if (lang === "id") s = s.replace(/,/g, "\u0000").replace(/\./g, ",").replace(/\u0000/g, ".");
  return s;
}

// the key Python rendered with; a different one means "rerun the panel"
export function structKey(st) {
  if (!st) return "";
  const s = st.session;
  return (s ? s.id + "|" + s.status + "|" + (s.count > s.target ? "over" : "") : "none") + "|" +
    (st.last_command || "");
}

function el(tag, attrs, parent) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function buildVideo(root, inst) {
  const box = el("div", { class: "msm-live-video" }, root);
  inst.img = el("img", { "data-testid": "live-video", alt: inst.data.labels.video_alt }, box);
  inst.line = el("div", { class: "msm-live-line", "data-testid": "live-source-line" }, box);
  inst.dot = el("span", { class: "msm-dot" }, inst.line);
  inst.text = el("span", {}, inst.line);
  inst.warn = el("div", { class: "msm-live-warn", "data-testid": "live-warning", hidden: "" }, box);
  inst.detail = el("div", { class: "msm-live-detail", hidden: "" }, box);
  inst.setStream = () => {
    const d = inst.data;
    if (!d.stream_url) { inst.img.removeAttribute("src"); return; }
    const fps = hidden() ? d.hidden_fps : d.fps;
    const src = d.stream_url + "?fps=" + fps;
    if (inst.img.getAttribute("src") !== src) inst.img.setAttribute("src", src);   // a new connection
  };
}

const COLORS = { live: "green", connecting: "orange", reconnecting: "orange", stalled: "orange", error: "red" };

function showVideo(inst, st, fails) {
  const L = inst.data.labels, lang = inst.data.lang;
  inst.setStream();
  if (!st) return;
  const src = st.source || {};
  let text = fmt(L.source_line, { src: src.label || "–", state: L.states[src.status] || src.status });
  if (src.outages) text += " · " + fmt(L.outages, { n: num(src.outages, lang) });
  if (src.fps && src.status === "live") text += " · " + fmt(L.fps, { fps: num(src.fps, lang, 1) });
  if (fails >= 3) text += " · " + L.status_lost;
  inst.text.textContent = text;
  inst.dot.className = "msm-dot msm-" + (COLORS[src.status] || "gray");
  let warn = "";
  if (st.restarting) warn = L.restarting;
  else if (src.status === "reconnecting" || src.status === "error") warn = L.unreachable;
  else if (src.status === "stalled") warn = L.stalled;
  else if (src.slow) warn = fmt(L.slow, { fps: num(src.fps, lang, 1), src: num(src.source_fps, lang, 1) });
  inst.warn.textContent = warn;
  inst.warn.hidden = !warn;
  const tech = ["reconnecting", "stalled", "error"].includes(src.status) && src.message && !st.restarting;
  inst.detail.textContent = tech ? fmt(L.detail, { why: src.message }) : "";
  inst.detail.hidden = !tech;
}

function buildPanel(root, inst) {
  const box = el("div", { class: "msm-live-panel" }, root);
  inst.state = el("div", { class: "msm-live-state", "data-testid": "live-state" }, box);
  inst.name = el("div", { class: "msm-live-name" }, box);
  inst.counter = el("div", { class: "msm-live-counter", "data-testid": "live-counter" }, box);
  inst.over = el("div", { class: "msm-live-over", "data-testid": "live-over", hidden: "" }, box);
}

function buildLog(root, inst) {
  const box = el("div", { class: "msm-live-logbox" }, root);
  el("div", { class: "msm-live-logtitle" }, box).textContent = inst.data.labels.log;
  inst.log = el("pre", { class: "msm-live-log", "data-testid": "live-log" }, box);
}

function showLog(inst, st) {
  const L = inst.data.labels, lang = inst.data.lang;
  if (!st || !st.session) return;
  const lines = (st.log || []).map((e) => e.kind === "auto"
    ? fmt(L.log_auto, { time: e.time, n: num(e.n, lang) })
    : fmt(L.log_fix, { time: e.time, d: (e.delta > 0 ? "+" : "") + e.delta, n: num(e.n, lang), why: e.reason }));
  const text = lines.length ? lines.join("\n") : L.no_sheets;
  if (inst.log.textContent !== text) inst.log.textContent = text;
}

function showPanel(inst, st) {
  const L = inst.data.labels, lang = inst.data.lang;
  if (!st) return;
  const s = st.session;
  inst.state.parentElement.hidden = !s;
  if (s) {
    let txt = st.monitoring ? L.active : L.paused, color = st.monitoring ? "#1a7f37" : "#d1242f";
    const src = (st.source || {}).status;
    if (s.status === "active" && ["connecting", "reconnecting", "stalled", "error"].includes(src)) {
      txt = L.waiting; color = "#b35900";          // not "Paused": nobody paused
    }
    inst.state.textContent = "● " + txt;
    inst.state.style.color = color;
    inst.name.textContent = s.name;
    inst.counter.textContent = num(s.count, lang) + " / " + num(s.target, lang);
    inst.counter.style.color = s.count > s.target ? "#d1242f" : "#1a7f37";
    inst.counter.dataset.count = String(s.count);
    const over = s.count > s.target;
    inst.over.textContent = over ? fmt(L.over, { n: num(s.count - s.target, lang) }) : "";
    inst.over.hidden = !over;
  }
  // something structural changed: rerun the panel once (again after 5 s if still different).
  // Only once the difference has lasted SETTLE_MS: a click in this tab already reruns the
  // panel, and a trigger arriving during that rerun would restart it (slower, not faster).
  const key = structKey(st), now = Date.now();
  if (!key || key === inst.data.rendered) { inst.seen = null; return; }
  if (!inst.seen || inst.seen.key !== key) inst.seen = { key, at: now };
  if (now - inst.seen.at >= SETTLE_MS && inst.setTrigger &&
      (key !== inst.triggered || now - inst.triggeredAt > 5000)) {
    inst.triggered = key;
    inst.triggeredAt = now;
    inst.setTrigger("update", key);
  }
}

export default function ({ parentElement, data, setTriggerValue }) {
  const root = parentElement;
  let inst = root.__msmLive;
  const fresh = !inst;
  if (fresh) inst = root.__msmLive = { data };
  inst.data = data;
  inst.setTrigger = setTriggerValue;
  S.url = data.status_url || S.url;
  S.visibleMs = data.poll_ms || S.visibleMs;
  S.hiddenMs = data.hidden_poll_ms || S.hiddenMs;
  if (fresh) {
    const [build, show] = { video: [buildVideo, showVideo], log: [buildLog, showLog] }[data.mode] ||
      [buildPanel, showPanel];
    build(root, inst);
    inst.update = (st, fails) => show(inst, st, fails);
    inst.update.visibility = () => { if (inst.setStream) inst.setStream(); };
  }
  // the snapshot Python rendered with, unless the poller already has a newer one
  const snap = data.initial;
  if (snap && (!S.last || (snap.at || 0) >= (S.last.at || 0))) S.last = snap;
  inst.update(S.last, S.fails);
  if (!S.subs.has(inst.update)) {
    S.subs.add(inst.update);
    if (!S.timer && !S.busy) schedule(0);
  }
  return () => {
    S.subs.delete(inst.update);
    if (inst.img) inst.img.removeAttribute("src");     // closes this tab's stream connection
    delete root.__msmLive;
    if (!S.subs.size) { clearTimeout(S.timer); S.timer = null; }
  };
}
