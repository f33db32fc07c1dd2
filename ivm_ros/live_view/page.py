'''The web view's one page: camera | mask | masked image, the current instruction, a box that publishes a new
one, and the diagnostics. Self-contained (inline CSS and JavaScript, no CDN): works offline. It polls
``/state.json`` every ``poll_ms`` and fetches a stream's JPEG only when its frame changed and the previous one
has loaded, so a slow link never queues images.'''

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ivm_ros live view</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 12px; background: #f4f4f4; color: #222; }
  h1 { font-size: 18px; margin: 0 0 8px; }
  .row { display: flex; gap: 8px; flex-wrap: wrap; }
  figure { margin: 0; flex: 1 1 30%; min-width: 200px; background: #fff; padding: 6px; border-radius: 4px; }
  figure img { width: 100%; display: block; background: #ddd; min-height: 120px; }
  figcaption { font-size: 12px; color: #555; margin-top: 4px; word-break: break-all; }
  section { background: #fff; padding: 8px; border-radius: 4px; margin-top: 8px; }
  #instruction { font-size: 16px; font-weight: 600; }
  #instruction-form input[type=text] { width: 60%; font-size: 15px; padding: 4px; }
  .kv { columns: 4 15em; font-size: 12px; margin: 2px 0 8px; }
  .kv div { border-bottom: 1px solid #e4e4e4; padding: 1px 0; break-inside: avoid; }
  .kv span { color: #666; display: inline-block; min-width: 11em; margin-right: 6px; }
  .lvl0 { color: #1a7f37; } .lvl1 { color: #b35900; } .lvl2, .lvl3 { color: #c00; }
  .muted { color: #888; }
</style>
</head>
<body>
<h1>ivm_ros live view</h1>
<div class="row">
  <figure><img id="camera" alt="camera"><figcaption id="camera-caption">camera: waiting</figcaption></figure>
  <figure><img id="mask" alt="mask"><figcaption id="mask-caption">mask: waiting</figcaption></figure>
  <figure><img id="masked" alt="masked image"><figcaption id="masked-caption">masked: waiting</figcaption></figure>
</div>
<section>
  <div>Instruction: <span id="instruction" class="muted">(none yet)</span></div>
  <form id="instruction-form">
    <input id="instruction-input" type="text" maxlength="1000" placeholder="e.g. pick up the red block">
    <button id="instruction-send" type="submit">Publish</button>
    <span id="send-status" class="muted"></span>
  </form>
</section>
<section>
  <div>Diagnostics</div>
  <div id="diagnostics" class="muted">none yet</div>
</section>
<script>
"use strict";
const STREAMS = ["camera", "mask", "masked"];
const shown = {}, loading = {};
let pollMs = 250;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function showFrames(state) {
  for (const name of STREAMS) {
    const f = state.frames[name];
    const topic = state.topics[name] || "";
    if (!f) continue;
    document.getElementById(name + "-caption").textContent =
      `${name} ${topic}: ${f.width}x${f.height} ${f.encoding}, ` +
      `stamp ${f.stamp.toFixed(3)}, age ${f.age_s.toFixed(2)} s`;
    if (f.seq === shown[name] || loading[name]) continue;
    const img = document.getElementById(name);
    loading[name] = true;
    img.onload = img.onerror = () => { loading[name] = false; };
    img.src = `frame/${name}.jpg?seq=${f.seq}`;
    img.dataset.seq = f.seq;
    shown[name] = f.seq;
  }
}

function showDiagnostics(list) {
  const box = document.getElementById("diagnostics");
  if (!list.length) return;
  box.className = "";
  box.replaceChildren();
  for (const d of list) {
    const head = el("div", `${d.name}: ${d.message}`, "lvl" + d.level);
    head.dataset.name = d.name;
    box.appendChild(head);
    const kv = el("div", undefined, "kv");
    for (const [k, v] of Object.entries(d.values)) {
      const row = el("div");
      row.appendChild(el("span", k));
      row.appendChild(document.createTextNode(v));
      kv.appendChild(row);
    }
    box.appendChild(kv);
  }
}

async function poll() {
  try {
    const r = await fetch("state.json", {cache: "no-store"});
    const state = await r.json();
    pollMs = state.poll_ms || pollMs;
    showFrames(state);
    const ins = document.getElementById("instruction");
    if (state.instruction) { ins.textContent = state.instruction; ins.className = ""; }
    showDiagnostics(state.diagnostics);
  } catch (e) {
    document.getElementById("send-status").textContent = "viewer unreachable: " + e;
  }
  setTimeout(poll, pollMs);
}

document.getElementById("instruction-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = document.getElementById("instruction-input");
  const status = document.getElementById("send-status");
  try {
    const r = await fetch("instruction", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify({text: input.value})});
    const body = await r.json();
    status.textContent = r.ok ? "published: " + body.published : "refused: " + body.error;
    if (r.ok) input.value = "";
  } catch (e) {
    status.textContent = "not sent: " + e;
  }
});
poll();
</script>
</body>
</html>
"""
