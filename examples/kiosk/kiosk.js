// Subscribes to affectlite/<device>/state and /availability and shows the current mood; with
// [audience] enabled on the device, also /audience: the last hours' windows as a chart.
// Kept framework-free so that a kiosk can serve it from any static folder (or file://).
"use strict";

const params = new URLSearchParams(location.search);
const settings = {
  // A page served over https may only open wss:// (the broker's TLS WebSocket listener).
  broker: params.get("broker") || (location.protocol === "https:"
    ? `wss://${location.hostname}:9443` : `ws://${location.hostname || "localhost"}:9001`),
  // A "+" typed into an address arrives as a space: it can only have meant the wildcard.
  prefix: (params.get("prefix") || "affectlite").replace(/ /g, "+"),
  device: (params.get("device") || "+").trim().replace(/ /g, "+") || "+",
  // notice=1 shows the notice people in view must be given (EU AI Act Art. 50(3)); notice=TEXT
  // shows your own wording instead.
  notice: params.get("notice"),
  username: params.get("user") || undefined,
  password: params.get("password") || undefined,
};

const $ = (id) => document.getElementById(id);
const DEFAULT_NOTICE = "This screen estimates, on this device only, how many people look at it and the expressions "
  + "they show. No images are stored or sent, and no one is identified.";
if (settings.notice) {
  $("privacy-notice").textContent = ["1", "true", "on"].includes(settings.notice.toLowerCase())
    ? DEFAULT_NOTICE : settings.notice;
  $("privacy-notice").hidden = false;
}
const devices = new Map();   // device id -> {online, state}
const windows = new Map();   // "device window_start" -> an audience window (the last hours)
const HOURS_SHOWN = 6;
// A device that died while the broker was down leaves its last state retained: a state older
// than this (its "time" against this screen's clock) is not shown as current.
const STALE_S = 60;
const fresh = (state) => typeof state.time !== "number" || Date.now() / 1000 - state.time < STALE_S;

// Several devices on one screen: device=+ (a site), or a prefix with a wildcard (a fleet at a
// central broker, e.g. sites/+/affectlite). Each device is then named on its badges and listed.
const several = settings.device === "+" || settings.prefix.split("/").includes("+");

// A device's name: its topic levels where the subscription had a wildcard ("lobby", "shop-1/till").
function deviceName(levels) {
  const pattern = [...settings.prefix.split("/"), settings.device];
  return levels.filter((level, i) => pattern[i] === "+").join("/") || settings.device;
}

// A privacy-mode device shows nobody; the others show their people.
const peopleOf = ([name, d]) => (d.state.privacy ? [] : d.state.persons.map((p) => ({ ...p, device: name })));

function render() {
  const shown = [...devices.entries()].sort(([a], [b]) => a.localeCompare(b));
  const online = shown.filter(([, d]) => d.online && d.state && fresh(d.state));
  $("device").textContent = several ? `${settings.prefix} (${online.length} online)` : settings.device;
  const states = online.map(([, d]) => d.state);
  const privacy = states.length > 0 && states.every((s) => s.privacy);
  const paused = states.some((s) => s.paused);
  const persons = online.flatMap(peopleOf);
  $("people").textContent = persons.length === 1 ? "1 person" : `${persons.length} people`;
  $("persons").replaceChildren(...persons.map((p) => {
    const item = document.createElement("li");
    item.dataset.track = p.track_id;
    item.dataset.valence = p.valence;
    item.dataset.device = p.device;
    item.textContent = several ? `${p.device} #${p.track_id} ${p.state}` : `#${p.track_id} ${p.state}`;
    return item;
  }));
  $("devices").replaceChildren(...(several ? shown : []).map(([name, d]) => {
    const item = document.createElement("li");
    const live = online.some(([other]) => other === name);
    item.dataset.device = name;
    item.dataset.online = String(live);
    const count = live ? peopleOf([name, d]).length : 0;
    item.textContent = !live ? `${name}: offline` : d.state.privacy ? `${name}: privacy mode`
      : `${name}: ${count === 1 ? "1 person" : `${count} people`}`;
    return item;
  }));
  // The room's mood: the most common valence among the people in view, and its leading emotion.
  const counts = {};
  persons.forEach((p) => { counts[p.valence] = (counts[p.valence] || 0) + 1; });
  const valence = Object.keys(counts).sort((a, b) => counts[b] - counts[a])[0] || "none";
  const leading = persons.filter((p) => p.valence === valence && p.state !== "uncertain").map((p) => p.state);
  $("mood").textContent = online.length === 0 ? "offline" : privacy ? "privacy mode"
    : persons.length === 0 ? "nobody in view" : (leading[0] || "uncertain");
  document.body.className = `valence-${online.length && !privacy ? valence : "none"}`;
  $("notice").textContent = paused ? "analysis paused" : states.some((s) => s.alert_active) ? "alert active" : "";
}

const client = mqtt.connect(settings.broker, {
  username: settings.username, password: settings.password, reconnectPeriod: 2000, connectTimeout: 5000,
});
const topic = (name) => `${settings.prefix}/${settings.device}/${name}`;
client.on("connect", () => {
  $("status").textContent = "connected";
  client.subscribe([topic("state"), topic("availability"), topic("audience")], { qos: 1 });
});
client.on("reconnect", () => { $("status").textContent = "reconnecting…"; });
client.on("offline", () => { $("status").textContent = "broker unreachable"; });
client.on("error", (error) => { $("status").textContent = `error: ${error.message}`; });
client.on("message", (name, payload) => {
  const levels = name.split("/");
  const kind = levels.pop();
  const device = deviceName(levels);
  const entry = devices.get(device) || { online: false, state: null };
  if (kind === "audience") {
    try {
      const w = JSON.parse(payload.toString());
      if (typeof w.window_start === "number" && typeof w.viewers === "number") windows.set(`${device} ${w.window_start}`, w);
    } catch (e) { return; }                                                          // ignore a malformed window
    renderAudience();
    return;
  }
  if (kind === "availability") {
    entry.online = payload.toString() === "online";
  } else {
    try { entry.state = JSON.parse(payload.toString()); } catch (e) { return; }   // ignore malformed state
  }
  devices.set(device, entry);
  render();
});
setInterval(render, 5000);   // states age even when no message comes

// The audience chart: viewers per window (bars) and the attention rate (dots, 0-100 %), and per
// content item how its viewers looked while they looked (one stacked bar each). Counts only.
const EMOTION_COLOURS = { angry: "#e74c3c", disgust: "#8e44ad", fear: "#d35400", happy: "#2ecc71",
  neutral: "#95a5a6", sad: "#3498db", surprise: "#f1c40f" };
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attributes) => {
  const node = document.createElementNS(SVG, tag);
  Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, value));
  return node;
};

function renderAudience() {
  const since = Date.now() / 1000 - HOURS_SHOWN * 3600;
  const shown = [...windows.values()].filter((w) => w.window_end >= since)
    .sort((a, b) => a.window_start - b.window_start);
  $("audience").hidden = shown.length === 0;
  if (shown.length === 0) return;
  const width = 600, height = 120, most = Math.max(1, ...shown.map((w) => w.viewers));
  const step = width / shown.length;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 20}`, id: "audience-chart", role: "img" });
  shown.forEach((w, i) => {
    const bar = height * w.viewers / most;
    chart.append(svg("rect", { x: i * step + 2, y: height - bar, width: Math.max(step - 4, 1), height: bar,
      fill: "rgba(255,255,255,0.75)", "data-window": w.window_start, "data-viewers": w.viewers }));
    if (typeof w.attention_rate === "number") {
      chart.append(svg("circle", { cx: i * step + step / 2, cy: height * (1 - w.attention_rate), r: 4,
        fill: "#ffd166", "data-attention": w.attention_rate }));
    }
  });
  const label = svg("text", { x: 0, y: height + 16, fill: "#fff", "font-size": 12 });
  label.textContent = `viewers per window (bars, up to ${most}) and attention rate (dots), last ${HOURS_SHOWN} h`;
  chart.append(label);
  // per content item: the viewers' expressions while they looked, over the windows shown
  const mix = new Map();
  shown.forEach((w) => Object.entries(w.content || {}).forEach(([item, figures]) => {
    const total = mix.get(item) || {};
    Object.entries(figures.viewer_expressions || {}).forEach(([emotion, share]) => {
      total[emotion] = (total[emotion] || 0) + share * (figures.attention_s || 0);
    });
    mix.set(item, total);
  }));
  const rows = [...mix.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([item, totals]) => {
    const sum = Object.values(totals).reduce((a, b) => a + b, 0) || 1;
    const row = document.createElement("li");
    row.dataset.content = item;
    const name = document.createElement("span");
    name.textContent = item;
    const bar = svg("svg", { viewBox: "0 0 100 6", preserveAspectRatio: "none", class: "mix" });
    let x = 0;
    Object.entries(totals).sort(([a], [b]) => a.localeCompare(b)).forEach(([emotion, value]) => {
      const share = value / sum;
      bar.append(svg("rect", { x, y: 0, width: 100 * share, height: 6, fill: EMOTION_COLOURS[emotion] || "#ccc",
        "data-emotion": emotion, "data-share": share.toFixed(3) }));
      x += 100 * share;
    });
    row.append(name, bar);
    return row;
  });
  $("audience-chart-box").replaceChildren(chart);
  $("content-mix").replaceChildren(...rows);
}
