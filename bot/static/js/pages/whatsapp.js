// WhatsApp numbers: add, link (QR or pairing code), disable, and each number's health.
import {api, t, el, $, fmtDateTime} from "/static/js/core.js";

const base = "/api/v1/whatsapp/numbers";
const STATES = ["connected", "pairing", "connecting", "disconnected", "reconnecting", "stream_replaced",
  "logged_out", "needs_link", "temp_banned", "failed", "stopped", "standby"];

function stateText(n) {
  // a disabled number is not connecting, whatever its last state said
  if (!n.enabled) return t("whatsapp.state_disabled");
  return STATES.includes(n.state) ? t("whatsapp.state_" + n.state) : n.state;
}

function render(numbers) {
  const box = $("numbers");
  box.replaceChildren();
  for (const n of numbers) {
    const node = $("number").content.cloneNode(true);
    const path = base + "/" + encodeURIComponent(n.account);
    node.querySelector(".account").textContent = n.account;
    node.querySelector(".label").textContent = n.label || "";
    const state = node.querySelector(".state");
    state.textContent = stateText(n);
    state.dataset.state = n.enabled ? n.state : "disabled";
    node.querySelector(".detail").textContent = n.detail || "";
    node.querySelector(".relink").hidden = !n.enabled || !["needs_link", "logged_out"].includes(n.state);
    const meta = [];
    if (n.restarts) meta.push(t("whatsapp.restarts", {n: n.restarts}));
    if (n.retry_at) meta.push(t("whatsapp.until", {when: fmtDateTime(n.retry_at)}));
    if (n.owner_node) meta.push(t("whatsapp.node", {node: n.owner_node}));
    node.querySelector(".meta").textContent = meta.join(" · ");
    const pairing = node.querySelector(".pairing");
    if (n.enabled && n.pairing_code) pairing.append(el("div", n.pairing_code, {class: "code"}));
    else if (n.enabled && n.has_qr) pairing.append(el("img", null, {class: "qr", alt: t("whatsapp.qr_alt"), src: path + "/qr.svg?t=" + Date.now()}));
    node.querySelector(".link-qr").addEventListener("click", () => act(path + "/link", {mode: "qr"}));
    node.querySelector(".link-code").addEventListener("click", () => {
      const phone = prompt(t("whatsapp.number_to_link"), n.account);
      if (phone) act(path + "/link", {mode: "code", phone});
    });
    const disable = node.querySelector(".disable");
    disable.hidden = !n.enabled;
    disable.addEventListener("click", () => act(path + "/disable"));
    box.append(node);
  }
}

async function act(url, body) {
  try { await api("POST", url, body); $("error").textContent = ""; await refresh(); }
  catch (err) { $("error").textContent = err.message; }
}

async function refresh() {
  try { render(await api("GET", base)); }
  catch (err) { $("error").textContent = err.message; }
}

$("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  await act(base, {account: $("account").value, label: $("label").value || null});
});
refresh();
setInterval(refresh, 3000);
