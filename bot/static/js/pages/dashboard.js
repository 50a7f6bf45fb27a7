// The supervisor's live dashboard: queue size, longest wait, agents online, SLA at risk,
// and reassigning from it. Follows the inbox's live events.
import {api, t, el, $, fmtAge, fmtNumber, attempt} from "/static/js/core.js";

let data = null;

function reassignCell(row) {
  const cell = el("td");
  const label = el("label", null, {class: "inline"});
  label.append(el("span", t("dashboard.reassign_to", {name: row.contact}), {class: "sr-only"}));
  const select = el("select", null, {"data-testid": "reassign"});
  select.append(el("option", "—", {value: ""}));
  for (const a of data.agents) if (a.role !== "admin") select.append(el("option", `${a.name} (${a.load}/${a.capacity})`, {value: a.id}));
  label.append(select);
  cell.append(label);
  select.addEventListener("change", async () => {
    if (!select.value) return;
    const ok = await attempt(() => api("POST", `/api/v1/conversations/${row.conversation_id}/assign`, {agent_id: select.value}), $("msg"));
    if (ok !== undefined) load();
  });
  return cell;
}

function render() {
  $("k-queue").textContent = fmtNumber(data.queue_size);
  $("k-wait").textContent = data.longest_wait_seconds === null ? "—" : fmtAge(data.longest_wait_seconds);
  $("k-online").textContent = fmtNumber(data.agents_online);
  $("k-human").textContent = fmtNumber(data.with_agents);
  $("k-risk").textContent = fmtNumber(data.sla_at_risk.length);
  $("k-risk-box").classList.toggle("warn", data.sla_at_risk.length > 0);
  const risk = $("risk");
  risk.replaceChildren();
  if (!data.sla_at_risk.length) {
    const tr = el("tr");
    tr.append(el("td", t("dashboard.none_at_risk"), {colspan: "4", class: "muted"}));
    risk.append(tr);
  }
  for (const row of data.sla_at_risk) {
    const tr = el("tr", null, {"data-testid": "risk-row"});
    const who = el("td");
    who.append(el("a", row.contact, {href: "/inbox/conversations/" + row.conversation_id}));
    tr.append(who);
    tr.append(el("td", t("inbox.owner_" + row.owner) + (row.agent_name ? " · " + row.agent_name : "")));
    tr.append(el("td", `${fmtAge(row.elapsed_seconds)} / ${fmtAge(row.target_seconds)}` + (row.breached ? " · " + t("inbox.breached") : ""), {class: row.breached ? "err" : ""}));
    tr.append(reassignCell(row));
    risk.append(tr);
  }
  const agents = $("agents");
  agents.replaceChildren();
  for (const a of data.agents) {
    const tr = el("tr", null, {"data-testid": "agent-row"});
    tr.append(el("td", a.name));
    tr.append(el("td", a.online ? t("inbox.online") : t("dashboard.offline")));
    tr.append(el("td", `${a.load}/${a.capacity}`));
    agents.append(tr);
  }
}

async function load() {
  const got = await attempt(() => api("GET", "/api/v1/dashboard"), $("msg"));
  if (got) { data = got; render(); document.body.dataset.loaded = "1"; }
}

let timer = null;
function soon() { clearTimeout(timer); timer = setTimeout(load, 150); }
const source = new EventSource("/api/v1/inbox/stream");
source.addEventListener("conversation", soon);
source.addEventListener("agents", soon);
source.addEventListener("open", () => { document.body.dataset.live = "1"; });
setInterval(load, 15000);
load();
