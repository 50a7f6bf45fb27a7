// Knowledge-base suggestions (/admin/kb/suggestions): what agents answered when the bot
// could not, most asked first; admins edit, then approve (new article or new section) or
// dismiss; supervisors read. Everything customers or agents wrote goes in as text.
import {api, t, el, $, fmtDateTime, fmtNumber, showError} from "/static/js/core.js";

const CAN_DECIDE = document.body.dataset.canDecide === "true";
const BASE = "/api/v1/knowledge/suggestions";
let articles = [];
let reloadTimer = null;

function customers(n) {
  return n === 1 ? t("suggestions.customers_one") : t("suggestions.customers_many", {n: fmtNumber(n)});
}

function kindName(kind) {
  const name = t("suggestions.kind_" + kind);
  return name.startsWith("suggestions.") ? kind : name;
}

function list(title, items, testid) {
  const box = el("div");
  box.append(el("strong", title));
  const ul = el("ul", null, {"data-testid": testid});
  for (const text of items) ul.append(el("li", text));
  box.append(ul);
  return box;
}

function field(labelText, input) {
  const label = el("label", null, {class: "block"});
  label.append(el("span", labelText), input);
  return label;
}

function editor(s, status) {
  const form = el("div", null, {"data-testid": "editor", class: "suggestion-editor"});
  const mode = el("select", null, {"data-testid": "mode"});
  mode.append(new Option(t("suggestions.new_article"), "create"), new Option(t("suggestions.extend"), "extend"));
  const target = el("select", null, {"data-testid": "article"});
  for (const a of articles) target.append(new Option(`${a.title} (${a.id})`, a.id));
  const targetBox = field(t("suggestions.article"), target);
  targetBox.hidden = true;
  const title = el("input", null, {type: "text", maxlength: "300", "data-testid": "title"});
  title.value = s.draft.title;
  const titleBox = field(t("suggestions.title"), title);
  const body = el("textarea", null, {rows: "7", "data-testid": "body"});
  body.value = s.draft.body;
  const examples = el("textarea", null, {rows: "3", "data-testid": "examples"});
  examples.value = s.example_questions.join("\n");
  mode.addEventListener("change", () => {
    const extend = mode.value === "extend";
    targetBox.hidden = !extend;
    titleBox.querySelector("span").textContent = extend ? t("suggestions.heading_new_section") : t("suggestions.title");
  });
  const approve = el("button", t("suggestions.approve"), {type: "button", "data-testid": "approve"});
  const dismiss = el("button", t("suggestions.dismiss"), {type: "button", class: "secondary", "data-testid": "dismiss"});
  approve.addEventListener("click", () => decide(status, async () => {
    const payload = {body: body.value, title: title.value || null,
                     questions: examples.value.split("\n").map((q) => q.trim()).filter(Boolean)};
    if (mode.value === "extend") payload.article_id = target.value;
    const done = await api("POST", `${BASE}/${s.id}/approve`, payload);
    return t("suggestions.approved", {id: done.article_id});
  }));
  dismiss.addEventListener("click", () => decide(status, async () => {
    await api("POST", `${BASE}/${s.id}/dismiss`);
    return t("suggestions.dismissed");
  }));
  const actions = el("div", null, {class: "actions"});
  actions.append(approve, dismiss, status);
  form.append(field(t("suggestions.mode"), mode), targetBox, titleBox, field(t("suggestions.body"), body),
              field(t("suggestions.examples"), examples), actions);
  return form;
}

async function decide(status, action) {
  status.className = ""; status.textContent = "…";
  try {
    status.textContent = await action();
    status.className = "ok";
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, 800);  // the result stays readable a moment
  } catch (err) {
    status.textContent = err.message; status.className = "err";
  }
}

function card(s) {
  const node = el("article", null, {class: "card suggestion", "data-testid": "suggestion", "data-id": s.id});
  const head = el("h2");
  head.append(el("span", customers(s.count), {class: "badge"}), " ",
              el("span", t("suggestions.status_" + s.status), {class: `badge ${s.status}`}), " ",
              el("span", t("suggestions.last_asked", {when: fmtDateTime(s.last_asked_at)}), {class: "muted"}));
  node.append(head);
  const kinds = Object.entries(s.masked);
  if (kinds.length) {
    const text = kinds.map(([k, n]) => `${kindName(k)} × ${n}`).join(", ");
    node.append(el("p", t("suggestions.masked", {kinds: text}), {class: "badge masked", "data-testid": "masked"}));
  }
  if (s.article_id) {
    const key = s.action === "extend" ? "suggestions.as_section" : "suggestions.as_article";
    node.append(el("p", t(key, {id: s.article_id}), {class: "muted"}));
  }
  const cols = el("div", null, {class: "grid"});
  cols.append(list(t("suggestions.questions"), s.questions, "questions"), list(t("suggestions.replies"), s.replies, "replies"));
  node.append(cols);
  if (s.status === "pending") {
    node.append(el("p", s.draft.source === "llm" ? t("suggestions.draft_llm") : t("suggestions.draft_replies"), {class: "muted"}));
    const status = el("span", null, {role: "status", "data-testid": "result"});
    if (CAN_DECIDE) node.append(editor(s, status));
    else node.append(list(t("suggestions.title"), [s.draft.title], "draft-title"), list(t("suggestions.body"), [s.draft.body], "draft-body"));
  }
  return node;
}

function render(items) {
  const box = $("list");
  box.replaceChildren();
  if (!items.length) { box.append(el("p", t("suggestions.none"), {class: "muted"})); return; }
  for (const s of items) box.append(card(s));
}

async function loadFigures() {
  const f = await api("GET", `${BASE}/figures`);
  $("f-closed").textContent = fmtNumber(f.gaps_closed);
  $("f-answered").textContent = fmtNumber(f.customers_answered);
  $("f-pending").textContent = fmtNumber(f.pending);
  $("f-waiting").textContent = fmtNumber(f.customers_waiting);
}

async function load() {
  showError(null, $("error"));
  const status = $("status").value;
  try {
    const items = await api("GET", BASE + (status === "all" ? "" : `?status=${status}`));
    render(items || []);
    await loadFigures();
  } catch (err) {
    if (err.status !== 401) showError(err, $("error"));
  }
}

async function start() {
  // the filter lives in the address, so a reload (the language selector) keeps it
  const chosen = new URLSearchParams(location.search).get("status");
  if (chosen && [...$("status").options].some((o) => o.value === chosen)) $("status").value = chosen;
  $("status").addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("status", $("status").value);
    history.replaceState(null, "", url);
    load();
  });
  if (CAN_DECIDE) {
    try { articles = await api("GET", "/api/v1/kb/articles") || []; } catch (err) { articles = []; }
  }
  await load();
  document.body.dataset.ready = "1";
}

start();
