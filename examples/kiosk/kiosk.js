// Subscribes to affectlite/<device>/state and /availability and shows the current mood.
// Kept framework-free so that a kiosk can serve it from any static folder (or file://).
"use strict";

const params = new URLSearchParams(location.search);
const settings = {
  // A page served over https may only open wss:// (the broker's TLS WebSocket listener).
  broker: params.get("broker") || (location.protocol === "https:"
    ? `wss://${location.hostname}:9443` : `ws://${location.hostname || "localhost"}:9001`),
  prefix: params.get("prefix") || "affectlite",
  device: params.get("device") || "+",
  username: params.get("user") || undefined,
  password: params.get("password") || undefined,
};

const $ = (id) => document.getElementById(id);
const devices = new Map();   // device id -> {online, state}
// A device that died while the broker was down leaves its last state retained: a state older
// than this (its "time" against this screen's clock) is not shown as current.
const STALE_S = 60;
const fresh = (state) => typeof state.time !== "number" || Date.now() / 1000 - state.time < STALE_S;

function render() {
  const online = [...devices.entries()].filter(([, d]) => d.online && d.state && fresh(d.state));
  $("device").textContent = settings.device === "+" ? `${settings.prefix} (${online.length} online)` : settings.device;
  const states = online.map(([, d]) => d.state);
  const privacy = states.some((s) => s.privacy);
  const paused = states.some((s) => s.paused);
  const persons = privacy ? [] : states.flatMap((s) => s.persons);
  $("people").textContent = persons.length === 1 ? "1 person" : `${persons.length} people`;
  $("persons").replaceChildren(...persons.map((p) => {
    const item = document.createElement("li");
    item.dataset.track = p.track_id;
    item.dataset.valence = p.valence;
    item.textContent = `#${p.track_id} ${p.state}`;
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
  client.subscribe([topic("state"), topic("availability")], { qos: 1 });
});
client.on("reconnect", () => { $("status").textContent = "reconnecting…"; });
client.on("offline", () => { $("status").textContent = "broker unreachable"; });
client.on("error", (error) => { $("status").textContent = `error: ${error.message}`; });
client.on("message", (name, payload) => {
  const [, device, kind] = name.split("/");
  const entry = devices.get(device) || { online: false, state: null };
  if (kind === "availability") {
    entry.online = payload.toString() === "online";
  } else {
    try { entry.state = JSON.parse(payload.toString()); } catch (e) { return; }   // ignore malformed state
  }
  devices.set(device, entry);
  render();
});
setInterval(render, 5000);   // states age even when no message comes
