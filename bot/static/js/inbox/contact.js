// The contact panel: the bot's summary, the customer's name, e-mail and notes (editable),
// labels with colours and suggestions, internal notes, past conversations.
import {api, t, el, $, fmtDate, fmtDateTime, attempt, showError} from "/static/js/core.js";
import {state, emit, labelColor} from "/static/js/inbox/state.js";
import {act} from "/static/js/inbox/conversation.js";

let contactFor = null;
let labelSaves = Promise.resolve();

export async function loadLabels() {
  try { state.labels = await api("GET", "/api/v1/labels"); } catch (err) { return; }
  const list = $("label-suggestions");
  list.replaceChildren(...state.labels.map((l) => el("option", null, {value: l.name})));
  emit("labels");
}

async function loadContact(id) {
  let contact;
  try { contact = await api("GET", `/api/v1/conversations/${id}/contact`); } catch (err) { return; }
  if (id !== state.current) return;
  const form = $("contact-form");
  if (!form.contains(document.activeElement) || contactFor !== id) {
    $("ct-name").value = contact.name || "";
    $("ct-email").value = contact.email || "";
    $("ct-notes").value = contact.notes || "";
  }
  contactFor = id;
  const past = $("past");
  past.replaceChildren();
  for (const c of contact.conversations) {
    if (c.conversation_id === id) continue;
    const li = el("li");
    li.append(el("a", `${c.channel} · ${c.account} · ${fmtDate(c.last_message_at)} · ${t("inbox.owner_" + c.owner)}`,
                  {href: "/inbox/conversations/" + c.conversation_id, "data-testid": "past-item"}));
    past.append(li);
  }
}

/** Draws the open conversation's label chips (again when the palette arrives: a new label's colour). */
export function renderLabels(c) {
  const chips = $("label-chips");
  chips.replaceChildren();
  for (const label of c.labels) {
    const li = el("li", null, {class: "chip", "data-testid": "label-chip"});
    li.style.backgroundColor = labelColor(label);
    li.append(el("span", label));
    li.append(el("button", "×", {type: "button", class: "chip-x", "aria-label": t("inbox.remove_label", {label}),
                                  onclick: () => saveLabels(c.labels.filter((x) => x !== label))}));
    chips.append(li);
  }
}

function renderNotes(d) {
  const notes = $("notes");
  notes.replaceChildren();
  for (const n of d.notes) {
    const item = el("div", null, {class: "note", "data-testid": "note-item"});
    item.append(el("div", `${n.author_name} · ${fmtDateTime(n.created_at)}`, {class: "muted"}));
    item.append(el("div", n.text));
    notes.append(item);
  }
}

function renderHistory(d) {
  const hist = $("history");
  hist.replaceChildren();
  for (const x of d.history) {
    const parts = [fmtDate(x.opened_at), x.team_name || "—", x.reason || "—", x.outcome ? t("inbox.outcome_" + x.outcome) : ""];
    if (x.csat_score) parts.push(t("inbox.csat", {score: x.csat_score}));
    hist.append(el("li", parts.filter(Boolean).join(" · "), {class: "muted", "data-testid": "history-item"}));
  }
}

function saveLabels(labels) {
  // shown at once (a second label added right away builds on this one), then saved
  state.detail.conversation.labels = labels;
  renderLabels(state.detail.conversation);
  const id = state.current;
  labelSaves = labelSaves.then(() => act(async () => {  // one after the other, in order
    await api("PUT", `/api/v1/conversations/${id}/labels`, {labels});
    await loadLabels();
  }));
  return labelSaves;
}

export function renderSide(d) {
  $("summary").textContent = d.summary;
  renderLabels(d.conversation);
  renderNotes(d);
  renderHistory(d);
  loadContact(state.current);  // edits by others arrive as events; a focused field is kept
}

export function initContact() {
  $("contact-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = state.current;
    const saved = await attempt(() => api("PATCH", `/api/v1/conversations/${id}/contact`, {
      name: $("ct-name").value, email: $("ct-email").value, notes: $("ct-notes").value,
    }), $("ct-msg"));
    if (saved) { $("ct-msg").textContent = t("common.saved"); emit("changed"); }
  });
  $("label-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("label-input").value.trim().toLowerCase();
    if (!value || !state.detail) return;
    $("label-input").value = "";
    saveLabels([...new Set([...state.detail.conversation.labels, value])]);
  });
  $("add-note").addEventListener("click", () => act(async () => {
    const text = $("note").value.trim();
    if (!text) return;
    await api("POST", `/api/v1/conversations/${state.current}/notes`, {text});
    $("note").value = "";
  }));
  showError(null, $("ct-msg"));
}
