// Follow-ups in the inbox: the open contact's sequences (stop, enroll in another), the
// "probably blocked" mark with its evidence (clear), and the "to do by hand" list.
import {api, t, el, $, fmtDateTime, fmtNumber, attempt} from "/static/js/core.js";
import {state} from "/static/js/inbox/state.js";

let shown = null;  // the conversation whose follow-ups are on screen

function enrollmentText(e) {
  const parts = [e.sequence_name, t("sequences.state_" + e.state),
                 t("sequences.step", {n: Math.min(e.next_step + 1, e.total_steps), total: e.total_steps})];
  if (e.state === "active" && e.paused_reason) parts.push(t("sequences.paused", {reason: e.paused_reason}));
  if (e.state === "active" && e.due_at) parts.push(t("sequences.next", {when: fmtDateTime(e.due_at)}));
  if (e.stop_reason) parts.push(e.stop_reason);
  return parts.join(" · ");
}

function renderEnrollments(items) {
  const list = $("fu-list");
  list.replaceChildren();
  if (!items.length) list.append(el("li", t("sequences.none"), {class: "muted"}));
  for (const e of items) {
    const row = el("li", null, {"data-testid": "enrollment", dataset: {state: e.state}});
    row.append(el("span", enrollmentText(e)));
    if (e.state === "active") {
      row.append(" ", el("button", t("sequences.stop"), {
        type: "button", class: "secondary", "data-testid": "sequence-stop",
        onclick: () => act(() => api("POST", `/api/v1/sequence-enrollments/${e.id}/stop`)),
      }));
    }
    list.append(row);
  }
}

function renderBlock(block) {
  const marked = !!(block && block.blocked);
  $("fu-blocked").hidden = !marked;
  if (!marked) return;
  const ev = block.evidence || {};
  let text = t("sequences.evidence", {undelivered: fmtNumber(block.undelivered), hours: fmtNumber(ev.watched_hours || 0)});
  if (block.since) text += " · " + t("sequences.since", {when: fmtDateTime(block.since)});
  $("fu-evidence").textContent = text;
}

async function loadConversation() {
  const id = state.current;
  if (!id) return;
  let items, block;
  try {
    [items, block] = await Promise.all([api("GET", `/api/v1/conversations/${id}/sequences`),
                                        api("GET", `/api/v1/conversations/${id}/blocked`)]);
  } catch (err) { $("fu-card").hidden = true; return; }  // a role without access sees the rest
  if (id !== state.current) return;
  shown = id;
  $("fu-card").hidden = false;
  renderEnrollments(items);
  renderBlock(block);
}

async function loadSequences() {
  let all;
  try { all = await api("GET", "/api/v1/sequences"); } catch (err) { return; }
  $("fu-choose").replaceChildren(...all.map((s) => el("option", s.name, {value: s.id})));
  $("fu-enroll").disabled = !all.length;
}

function taskNode(task) {
  const item = el("li", null, {class: "task", "data-testid": "task"});
  item.append(el("a", task.contact_name || task.contact_phone, {href: "/inbox/conversations/" + task.conversation_id, class: "name"}));
  item.append(el("div", [task.sequence_name, t("sequences.task_step", {n: task.step}), task.reason || ""].join(" · "), {class: "muted"}));
  if (task.text) item.append(el("div", task.text, {class: "muted"}));
  item.append(el("button", t("sequences.done"), {
    type: "button", class: "secondary", "data-testid": "task-done",
    onclick: () => act(() => api("POST", `/api/v1/sequence-tasks/${task.id}/done`)),
  }));
  return item;
}

async function loadTasks() {
  let tasks;
  try { tasks = await api("GET", "/api/v1/sequence-tasks"); } catch (err) { return; }
  $("fu-task-count").textContent = fmtNumber(tasks.length);
  const box = $("fu-task-list");
  box.replaceChildren(...tasks.map(taskNode));
  if (!tasks.length) box.append(el("li", t("sequences.no_tasks"), {class: "muted"}));
}

async function act(fn) {
  await attempt(fn, $("error"));
  await Promise.all([loadConversation(), loadTasks()]);
}

/** The open conversation changed or was re-read. */
export function showFollowups(id) {
  if (id !== shown) loadConversation();
}

/** Something changed somewhere (a live event): re-read what is on screen. */
export function refreshFollowups() {
  return Promise.all([loadConversation(), loadTasks()]);
}

export function initFollowups() {
  $("fu-enroll").addEventListener("click", () => act(() =>
    api("POST", `/api/v1/conversations/${state.current}/sequences`, {sequence_id: $("fu-choose").value})));
  $("fu-clear").addEventListener("click", () => act(() => api("DELETE", `/api/v1/conversations/${state.current}/blocked`)));
  loadSequences();
  loadTasks();
}
