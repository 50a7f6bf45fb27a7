// Follow-ups in the inbox: the contact's sequences (stop, enroll), the "probably blocked"
// mark (clear) and the "to do by hand" list. Customer text is always set as text.
import {api, t, el, $} from "/static/js/core.js";
import {state, on} from "/static/js/inbox/state.js";

let conversation = null;
const fail = (e) => { $("error").textContent = e.message || String(e); };

async function loadConversation() {
  if (!conversation) return;
  const id = conversation;
  let items = [], block = null;
  try {
    [items, block] = await Promise.all([api("GET", `/api/v1/conversations/${id}/sequences`),
                                        api("GET", `/api/v1/conversations/${id}/blocked`)]);
  } catch (e) { $("fu-card").hidden = true; return; }
  if (id !== conversation) return;
  $("fu-card").hidden = false;
  const list = $("fu-list"); list.replaceChildren();
  if (!items.length) list.append(el("div", t("followups.none"), {class: "muted"}));
  for (const e of items) {
    const row = el("div", null, {"data-testid": "enrollment", dataset: {state: e.state}});
    let text = `${e.sequence_name} · ${t("followups." + e.state)} · ${t("followups.step")} ${Math.min(e.next_step + 1, e.total_steps)}/${e.total_steps}`;
    if (e.state === "active" && e.paused_reason) text += ` · ${t("followups.paused")} (${e.paused_reason})`;
    if (e.state === "active" && e.due_at) text += ` · ${t("followups.next")}: ${new Date(e.due_at).toLocaleString()}`;
    if (e.stop_reason) text += ` · ${e.stop_reason}`;
    row.append(el("span", text));
    if (e.state === "active") {
      row.append(el("button", t("followups.stop"), {type: "button", class: "inline-gap", "data-testid": "sequence-stop",
        onclick: () => act(() => api("POST", `/api/v1/sequence-enrollments/${e.id}/stop`))}));
    }
    list.append(row);
  }
  $("fu-blocked").hidden = !(block && block.blocked);
  if (block && block.blocked) {
    const ev = block.evidence || {};
    $("fu-evidence").textContent = `${block.undelivered} ${t("followups.undelivered")} · ${ev.watched_hours || 0} ${t("followups.watched")}` +
      (block.since ? ` · ${new Date(block.since).toLocaleString()}` : "");
  }
}

async function loadSequences() {
  try {
    const all = await api("GET", "/api/v1/sequences");
    const sel = $("fu-choose"); sel.replaceChildren();
    for (const s of all) sel.append(el("option", s.name, {value: s.id}));
    $("fu-enroll").disabled = !all.length;
  } catch (e) { /* read-only roles still see the rest */ }
}

async function loadTasks() {
  let tasks = [];
  try { tasks = await api("GET", "/api/v1/sequence-tasks"); } catch (e) { return; }
  $("fu-task-count").textContent = String(tasks.length);
  const box = $("fu-task-list"); box.replaceChildren();
  if (!tasks.length) box.append(el("div", t("followups.no_tasks"), {class: "muted"}));
  for (const task of tasks) {
    const item = el("div", null, {class: "item", "data-testid": "task"});
    item.append(el("div", task.contact_name || task.contact_phone, {class: "name"}));
    item.append(el("div", `${task.sequence_name} · ${t("followups.step")} ${task.step} · ${task.reason || ""}`, {class: "meta"}));
    item.append(el("div", task.text || "", {class: "meta"}));
    item.append(el("button", t("followups.done"), {type: "button", "data-testid": "task-done",
      onclick: (ev) => { ev.stopPropagation(); act(() => api("POST", `/api/v1/sequence-tasks/${task.id}/done`)); }}));
    item.addEventListener("click", () => { location.href = "/inbox/conversations/" + task.conversation_id; });
    box.append(item);
  }
}

async function act(fn) {
  $("error").textContent = "";
  try { await fn(); } catch (e) { fail(e); }
  await loadConversation(); await loadTasks();
}

/** Wires the follow-ups to the inbox's events (a conversation rendered, a live refresh). */
export function initFollowups() {
  $("fu-enroll").addEventListener("click", () => act(() =>
    api("POST", `/api/v1/conversations/${conversation}/sequences`, {sequence_id: $("fu-choose").value})));
  $("fu-clear").addEventListener("click", () => act(() => api("DELETE", `/api/v1/conversations/${conversation}/blocked`)));
  on("rendered", (d) => {
    const id = d.conversation.id;
    if (id !== conversation) { conversation = id; loadConversation(); }
  });
  on("refreshed", () => { if (state.current) loadConversation(); loadTasks(); });
  loadSequences(); loadTasks();
}
