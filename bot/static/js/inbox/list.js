// The conversation list: tabs, search, filters, keyset pages, unread counts, wait age.
import {api, t, el, $, fmtWhen, fmtAge, fmtNumber} from "/static/js/core.js";
import {state, emit, labelColor} from "/static/js/inbox/state.js";

const PAGE = 50;
let seq = 0;
const baseTitle = document.title;

function params(cursor, limit) {
  const p = new URLSearchParams({status: state.tab, limit: String(limit)});
  if (state.query.trim()) p.set("q", state.query.trim());
  for (const [k, v] of Object.entries(state.filters)) if (v) p.set(k, v);
  if (cursor) p.set("cursor", cursor);
  return p;
}

async function fetchPage(cursor, limit) {
  const {data, headers} = await api("GET", "/api/v1/conversations?" + params(cursor, limit), undefined, {withHeaders: true});
  return {items: data, cursor: headers.get("X-Next-Cursor")};
}

/** Reload the list from the top (keeping as many rows as are shown), or append a page. */
export async function loadList({append = false} = {}) {
  const mine = ++seq;
  const limit = append ? PAGE : Math.min(200, Math.max(PAGE, state.items.length));
  let page;
  try { page = await fetchPage(append ? state.cursor : null, limit); } catch (err) { return; }
  if (!page || mine !== seq) return;  // a newer request won
  state.items = append ? state.items.concat(page.items) : page.items;
  state.cursor = page.cursor;
  renderList();
  $("list-status").textContent = t("inbox.results", {n: fmtNumber(state.items.length)});
}

export async function loadCounts() {
  let counts;
  try { counts = await api("GET", "/api/v1/inbox/counts"); } catch (err) { return; }
  for (const [key, value] of Object.entries(counts)) {
    const node = document.querySelector(`[data-count="${key}"]`);
    if (node) node.textContent = value ? fmtNumber(value) : "";
  }
  document.title = counts.unread ? `(${counts.unread}) ${baseTitle}` : baseTitle;
  document.body.dataset.unread = String(counts.unread);
}

function row(c) {
  const li = el("li", null, {class: "conv-item" + (c.id === state.current ? " selected" : "")});
  const a = el("a", null, {href: "/inbox/conversations/" + c.id, class: "conv-link", "data-testid": "item",
                           "data-id": c.id, "aria-current": c.id === state.current ? "true" : null});
  const top = el("span", null, {class: "row-top"});
  top.append(el("span", c.contact_name || c.contact_phone || "?", {class: "name"}));
  top.append(el("time", fmtWhen(c.last_message_at), {class: "when", datetime: c.last_message_at || ""}));
  a.append(top);
  const preview = c.preview || (c.preview_kind ? t("inbox.kind_" + c.preview_kind) : "");
  a.append(el("span", preview, {class: "row-preview" + (c.preview_from === "other" ? " muted" : ""), "data-testid": "item-preview"}));
  const meta = el("span", null, {class: "row-meta"});
  meta.append(el("span", t("inbox.owner_" + c.owner), {class: "badge " + c.owner}));
  if (c.waiting_since) {
    const secs = (Date.now() - new Date(c.waiting_since)) / 1000;
    meta.append(el("span", t("inbox.waiting", {age: fmtAge(secs)}), {class: "wait", "data-since": c.waiting_since, "data-testid": "wait"}));
  }
  if (c.first_response && c.first_response.breached && !c.first_response.done) meta.append(el("span", t("inbox.breached"), {class: "badge breached"}));
  if (c.assigned_agent_name) meta.append(el("span", c.assigned_agent_name, {class: "muted"}));
  for (const label of c.labels) {
    const chip = el("span", label, {class: "chip"});
    chip.style.backgroundColor = labelColor(label);
    meta.append(chip);
  }
  if (c.unread) meta.append(el("span", fmtNumber(c.unread), {class: "unread", "data-testid": "unread", "aria-label": t("inbox.unread", {n: c.unread})}));
  a.append(meta);
  li.append(a);
  return li;
}

export function renderList() {
  const list = $("list");
  const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
  list.replaceChildren();
  if (!state.items.length) list.append(el("li", state.query ? t("inbox.no_results") : t("inbox.none"), {class: "empty"}));
  for (const c of state.items) list.append(row(c));
  $("more").hidden = !state.cursor;
  // when the list first became usable (the benchmark reads it)
  if (!performance.getEntriesByName("atiende:list-ready").length) performance.mark("atiende:list-ready");
  if (focusedId) { const again = list.querySelector(`[data-id="${focusedId}"]`); if (again) again.focus(); }
}

/** Refresh the "waiting 5 min" ages without a request. */
export function tickAges() {
  for (const node of document.querySelectorAll(".wait[data-since]")) {
    node.textContent = t("inbox.waiting", {age: fmtAge((Date.now() - new Date(node.dataset.since)) / 1000)});
  }
}

export function neighbour(step) {
  const i = state.items.findIndex((c) => c.id === state.current);
  const next = state.items[i + step] || (i === -1 ? state.items[0] : null);
  return next ? next.id : null;
}

function setTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-pressed", String(b.dataset.tab === tab));
  loadList();
}

function filtersChanged() {
  state.filters = {
    label: $("f-label").value, agent_id: $("f-agent").value, team_id: $("f-team").value,
    channel: $("f-channel").value, account: $("f-account").value.trim(),
  };
  const n = Object.values(state.filters).filter(Boolean).length;
  $("filter-count").textContent = n ? fmtNumber(n) : "";
  loadList();
}

export function fillFilterOptions() {
  const fill = (id, items, value, label) => {
    const sel = $(id), keep = sel.value;
    sel.replaceChildren(el("option", t("inbox.any"), {value: ""}));
    for (const item of items) sel.append(el("option", label(item), {value: value(item)}));
    sel.value = keep;
  };
  fill("f-label", state.labels, (l) => l.name, (l) => l.name);
  fill("f-agent", state.agents, (a) => a.id, (a) => a.name);
  fill("f-team", state.teams, (x) => x.id, (x) => x.name);
}

export function initList() {
  let timer = null;
  const search = $("search");
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.query = search.value; loadList(); }, 150);
  });
  search.addEventListener("keydown", async (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      clearTimeout(timer);
      if (state.query !== search.value) { state.query = search.value; await loadList(); }
      if (state.items.length) emit("open", state.items[0].id);
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      const first = $("list").querySelector(".conv-link");
      if (first) first.focus();
    }
  });
  $("list").addEventListener("click", (e) => {
    const link = e.target.closest(".conv-link");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    emit("open", link.dataset.id);
  });
  $("list").addEventListener("keydown", (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const links = [...$("list").querySelectorAll(".conv-link")];
    const i = links.indexOf(document.activeElement);
    const next = links[i + (e.key === "ArrowDown" ? 1 : -1)];
    if (next) { e.preventDefault(); next.focus(); }
    else if (e.key === "ArrowUp") { e.preventDefault(); search.focus(); }
  });
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => setTab(b.dataset.tab));
  for (const id of ["f-label", "f-agent", "f-team", "f-channel"]) $(id).addEventListener("change", filtersChanged);
  $("f-account").addEventListener("change", filtersChanged);
  $("f-clear").addEventListener("click", () => {
    for (const id of ["f-label", "f-agent", "f-team", "f-channel", "f-account"]) $(id).value = "";
    filtersChanged();
  });
  $("more").addEventListener("click", () => loadList({append: true}));
  const sentinel = $("more");
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((x) => x.isIntersecting) && state.cursor) loadList({append: true});
    }, {root: $("list-scroll"), rootMargin: "200px"}).observe(sentinel);
  }
}
