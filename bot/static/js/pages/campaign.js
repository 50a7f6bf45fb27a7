// One campaign: launch, pause, resume, cancel, and its progress (refreshed every 5 s).
import {api, $, fmtDateTime} from "/static/js/core.js";

const id = document.body.dataset.campaign;
function show(c) {  // text only: nothing from the server becomes HTML
  $("status").textContent = c.status;
  $("next").textContent = c.next_send_at ? fmtDateTime(c.next_send_at) : "—";
  for (const [k, v] of Object.entries(c.progress)) { const node = $("p-" + k); if (node) node.textContent = String(v); }
}
async function refresh() { try { show(await api("GET", "/api/v1/campaigns/" + id)); } catch (err) { /* next tick */ } }
for (const b of document.querySelectorAll("button[data-action]")) {
  b.addEventListener("click", async () => {
    try { show(await api("POST", `/api/v1/campaigns/${id}/${b.dataset.action}`)); $("error").textContent = ""; }
    catch (err) { $("error").textContent = err.message; }
  });
}
setInterval(refresh, 5000);
