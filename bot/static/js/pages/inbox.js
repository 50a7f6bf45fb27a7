// The inbox page: list, conversation, composer and contact panel wired together, live
// updates (server-sent events) and the keyboard shortcuts.
import {api, t, el, $, user, attempt, showError} from "/static/js/core.js";
import {state, on, emit} from "/static/js/inbox/state.js";
import {initList, loadList, loadCounts, renderList, fillFilterOptions, tickAges, neighbour} from "/static/js/inbox/list.js";
import {initConversation, openConversation, closeConversation, loadDetail, actions} from "/static/js/inbox/conversation.js";
import {initComposer, restoreDraft} from "/static/js/inbox/composer.js";
import {initContact, loadLabels, renderLabels, renderSide} from "/static/js/inbox/contact.js";
import {initFollowups, showFollowups, refreshFollowups} from "/static/js/inbox/followups.js";
import {addSuggestButtons} from "/static/js/inbox/suggest.js";

async function loadOptions() {
  try {
    const [agents, teams, canned] = await Promise.all([
      api("GET", "/api/v1/agents"), api("GET", "/api/v1/teams"), api("GET", "/api/v1/canned-responses")]);
    state.agents = agents.filter((a) => a.role !== "admin" || a.id === user.id);
    state.teams = teams;
    state.canned = canned;
    const me = agents.find((a) => a.id === user.id);
    if (me) $("online").checked = me.online;
  } catch (err) { return; }
  fillFilterOptions();
}

let refreshTimer = null;
function scheduleRefresh() {
  // bursts of events become one re-read
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    await Promise.all([loadList(), loadCounts(), state.current ? loadDetail() : null, refreshFollowups()]);
  }, 120);
}

function connect() {
  const source = new EventSource("/api/v1/inbox/stream");
  source.addEventListener("conversation", scheduleRefresh);
  source.addEventListener("agents", loadOptions);
  source.addEventListener("open", () => { document.body.dataset.live = "1"; });
  source.onerror = () => { document.body.dataset.live = "0"; };
}

function inField(e) {
  const tag = (e.target.tagName || "").toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || e.target.isContentEditable;
}

// Alt+C claim, Alt+R resolve, Alt+J / Alt+K next / previous conversation, Alt+S search,
// Escape back to the list (phones); they work from the composer too.
function shortcuts(e) {
  if (e.altKey && !e.ctrlKey && !e.metaKey) {
    const key = e.code;
    if (key === "KeyC" && state.current && !$("claim").hidden) { e.preventDefault(); actions.claim(); }
    else if (key === "KeyR" && state.current && !$("resolve").hidden) { e.preventDefault(); actions.resolve(); }
    else if (key === "KeyJ" || key === "KeyK") {
      e.preventDefault();
      const id = neighbour(key === "KeyJ" ? 1 : -1);
      if (id) openConversation(id);
    } else if (key === "KeyS") { e.preventDefault(); $("search").focus(); }
  } else if (e.key === "Escape" && !inField(e) && document.body.classList.contains("conv-open")) {
    $("back").click();
  }
}

function init() {
  initList();
  initConversation();
  initComposer();
  initContact();
  initFollowups();
  on("open", (id) => openConversation(id));
  on("opened", (id, changed) => { if (changed) restoreDraft(id); renderList(); });
  on("rendered", (d, fresh) => { renderSide(d, fresh); showFollowups(d.conversation.id); addSuggestButtons(d); });
  on("changed", () => { loadList(); loadCounts(); });
  on("read", () => { loadCounts(); const c = state.items.find((x) => x.id === state.current); if (c && c.unread) { c.unread = 0; renderList(); } });
  on("labels", () => {
    fillFilterOptions(); renderList();
    if (state.detail) renderLabels(state.detail.conversation);  // a new label gets its colour
  });
  $("online").addEventListener("change", (e) => attempt(() => api("POST", "/api/v1/agents/me/presence", {online: e.target.checked})));
  $("new-toggle").addEventListener("click", () => {
    const form = $("new-conv"), open = form.hidden;
    form.hidden = !open;
    $("new-toggle").setAttribute("aria-expanded", String(open));
    if (open) $("new-phone").focus();
  });
  $("new-conv").addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = await attempt(() => api("POST", "/api/v1/conversations", {phone: $("new-phone").value, text: $("new-text").value}), $("new-error"));
    if (!out) return;
    $("new-phone").value = ""; $("new-text").value = ""; $("new-conv").hidden = true;
    $("new-toggle").setAttribute("aria-expanded", "false");
    state.tab = "mine";
    for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-pressed", String(b.dataset.tab === "mine"));
    await loadList();
    await openConversation(out.conversation_id);
  });
  document.addEventListener("keydown", shortcuts);
  window.addEventListener("popstate", () => {
    const m = /^\/inbox\/conversations\/([0-9a-f-]+)$/.exec(location.pathname);
    if (m) openConversation(m[1], {push: false}); else closeConversation();
  });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible" && state.current) loadDetail(); });
  setInterval(tickAges, 30000);
  loadOptions();
  loadLabels();
  loadCounts();
  loadList();
  const initial = document.body.dataset.conversation;
  if (initial) openConversation(initial, {push: false});
  connect();
}

init();
