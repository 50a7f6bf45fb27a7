// The customer data page (/admin/contacts): look a customer up, export, erase.
// Everything shown comes from the API and is put in the page as text, never as HTML.
import {api, $} from "/static/js/core.js";

const L = JSON.parse($("lookup").dataset.labels);
let current = null;

function say(message, isError) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

const base = (phone) => "/api/v1/contacts/" + encodeURIComponent(phone);

function show(counts) {
  const rows = $("held-rows");
  rows.replaceChildren();
  for (const [table, n] of counts) {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = table;
    const value = document.createElement("td");
    value.textContent = String(n);
    tr.append(name, value);
    rows.append(tr);
  }
}

$("lookup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const phone = $("phone").value.trim();
  $("held").hidden = true;
  $("json-link").hidden = $("archive-link").hidden = true;
  current = null;
  say("…");
  let doc;
  try {
    doc = await api("GET", base(phone) + "/export");
  } catch (err) {
    say(err.message, true);
    return;
  }
  current = phone;
  show(Object.entries(doc.data).map(([table, list]) => [table, list.length]));
  $("json-link").href = base(phone) + "/export";
  $("archive-link").href = base(phone) + "/export/archive";
  $("json-link").hidden = $("archive-link").hidden = false;
  $("held").hidden = false;
  $("erase").hidden = false;
  say((doc.contact.name || "") + " " + (doc.contact.phone_e164 || ""));
});

$("erase").addEventListener("submit", async (event) => {
  event.preventDefault();
  const typed = $("confirm").value.trim();
  if (!current || typed !== current) {
    say(L.mismatch, true);
    return;
  }
  let result;
  try {
    result = await api("DELETE", base(current));  // the session's CSRF token goes with it
  } catch (err) {
    say(err.message, true);
    return;
  }
  const skip = new Set(["erased", "contact_id", "erasure_id", "resumed", "complete", "opt_out_kept"]);
  show(Object.entries(result).filter(([k]) => !skip.has(k)));
  $("erase").hidden = true;
  $("json-link").hidden = $("archive-link").hidden = true;
  current = null;
  say(L.erased + " (" + result.erasure_id + ")");
});
