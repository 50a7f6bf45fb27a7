// The web simulator: a customer's phone in the browser (text and voice notes).
// Customer text is always text; WhatsApp formatting shows as WhatsApp shows it.
import {api, t, el, $} from "/static/js/core.js";
import {formatted} from "/static/js/format.js";

const chat = $("chat");
let lastSeq = 0;
let generation = 0;  // a redraw starts a new generation: older polls' answers are dropped
const shown = new Set();
let currentPhone = $("phone").value;

function redraw() { generation += 1; lastSeq = 0; shown.clear(); chat.replaceChildren(); }
function failed(err) { $("sim-error").textContent = t("simulator.error", {reason: err.message}); }

function addLine(line) {
  if (shown.has(line.seq)) return;  // a poll that raced another one
  shown.add(line.seq);
  const div = el("div", null, {class: "msg " + (line.direction === "in" ? "in" : "out")});
  const text = line.kind === "voice" ? "🎤 " + (line.text || t("simulator.listening")) : (line.text || "");
  div.append(formatted(text));
  div.append(el("div", line.author, {class: "meta"}));
  chat.append(div);
  chat.scrollTop = chat.scrollHeight;
}

async function poll() {
  const phone = $("phone").value;
  if (phone !== currentPhone) { currentPhone = phone; redraw(); }
  const mine = generation;
  try {
    const lines = await api("GET", `/api/v1/simulator/conversations/${encodeURIComponent(phone)}?after=${lastSeq}`, undefined, {noRedirect: true});
    if (mine !== generation) return;
    for (const line of lines) { lastSeq = Math.max(lastSeq, line.seq); addLine(line); }
  } catch (err) { /* server restarting: try again */ }
}
setInterval(poll, 1000);
poll();

$("audio").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  $("sim-error").textContent = "";
  const form = new FormData();
  form.append("from", $("phone").value);
  if ($("name").value) form.append("name", $("name").value);
  form.append("audio", file, file.name);
  e.target.value = "";
  let accepted;
  try { accepted = await api("POST", "/api/v1/simulator/voice", form, {noRedirect: true}); } catch (err) { failed(err); return; }
  poll();
  await api("GET", `/api/v1/simulator/messages/${accepted.message_id}?wait=60`, undefined, {noRedirect: true}).catch(() => null);
  redraw();  // the voice line now carries its transcript
  poll();
});

$("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("text");
  $("sim-error").textContent = "";
  const body = {from: $("phone").value, name: $("name").value || null, text: input.value};
  let accepted;
  try { accepted = await api("POST", "/api/v1/simulator/messages", body, {noRedirect: true}); } catch (err) { failed(err); return; }
  input.value = "";
  await api("GET", `/api/v1/simulator/messages/${accepted.message_id}?wait=10`, undefined, {noRedirect: true}).catch(() => null);
  poll();
});
