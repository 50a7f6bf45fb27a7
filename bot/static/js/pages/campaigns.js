// Campaigns: contact-list upload (the list shows at once, with rows left out and why) and
// a new campaign draft.
import {api, t, el, $} from "/static/js/core.js";

function say(id, text, ok = true) { const node = $(id); node.textContent = text; node.className = "msg " + (ok ? "ok" : "err"); }

async function refreshLists() {
  let lists;
  try { lists = await api("GET", "/api/v1/contact-lists"); } catch (err) { return; }
  $("lists-body").replaceChildren(...lists.map((l) => {
    const tr = el("tr");
    tr.append(el("td", l.name), el("td", l.total_rows, {class: "num"}), el("td", l.accepted, {class: "num"}),
              el("td", l.rejected.length, {class: "num"}), el("td", l.fields.join(", ")));
    return tr;
  }));
  const select = $("list-select"), keep = select.value;
  select.replaceChildren(...lists.map((l) => el("option", `${l.name} (${l.accepted})`, {value: l.id})));
  if (keep) select.value = keep;
}

$("upload").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const rejected = $("upload-rejected");
  rejected.replaceChildren();
  let body;
  try { body = await api("POST", "/api/v1/contact-lists", new FormData(ev.target)); }
  catch (err) { say("upload-result", err.message, false); return; }
  say("upload-result", t("campaigns.uploaded", {accepted: body.accepted, total: body.total_rows}));
  for (const row of body.rejected) rejected.append(el("li", `#${row.row} ${row.phone} — ${row.reason} ${row.detail}`));
  ev.target.reset();
  await refreshLists();  // the new list is in the table and the campaign form, no reload
  $("list-select").value = body.id;
});

$("create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const payload = {
    name: f.get("name"), list_id: f.get("list_id"), channel: f.get("channel"), account: f.get("account"),
    variants: String(f.get("variants")).split(/\n-{3,}\n/).map((v) => v.trim()).filter(Boolean),
    window: {days: String(f.get("days")).split(",").map(Number), start: f.get("start"), end: f.get("end"), timezone: f.get("timezone")},
    pacing: {per_hour: Number(f.get("per_hour")), per_day: Number(f.get("per_day"))},
  };
  if (f.get("template_name")) payload.template_name = f.get("template_name");
  try {
    const body = await api("POST", "/api/v1/campaigns", payload);
    location.href = "/admin/campaigns/" + body.id;
  } catch (err) { say("create-result", err.message, false); }
});
