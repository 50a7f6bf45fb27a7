// The open conversation: header, actions (claim, release, resolve, transfer, reassign),
// the transcript with WhatsApp formatting, and new customer messages announced.
import {api, t, el, $, user, fmtDateTime, showError} from "/static/js/core.js";
import {formatted} from "/static/js/format.js";
import {state, emit} from "/static/js/inbox/state.js";

const mediaNodes = new Map();  // players kept across re-renders so playback goes on
let seen = new Set();

function slaText(name, s) {
  if (!s) return "";
  const mins = Math.round(s.elapsed_seconds / 60), target = Math.round(s.target_seconds / 60);
  let text = t("inbox.sla", {name: t("inbox.sla_" + name), mins, target});
  if (s.breached) text += " · " + t("inbox.breached");
  if (s.paused) text += " · " + t("inbox.paused");
  return text;
}

function mediaNode(m) {
  const kept = mediaNodes.get(m.id);
  if (kept) return kept;
  const media = m.media, src = `/api/v1/media/messages/${encodeURIComponent(m.id)}/content`;
  const name = media.filename || media.mime_type || "";
  let node;
  if (!media.key) {
    node = el("span", t("inbox.media_missing") + (name ? ": " + name : ""), {class: "muted"});
  } else if (m.kind === "voice" || (media.mime_type || "").startsWith("audio/")) {
    node = el("audio", null, {controls: true, preload: "metadata", src, "data-testid": "voice-player",
                               "aria-label": t("inbox.voice_note")});
  } else if (m.kind === "image" && (media.mime_type || "").startsWith("image/")) {
    node = el("a", null, {href: src, target: "_blank", rel: "noopener"});
    node.append(el("img", null, {class: "photo", src, alt: name || t("inbox.kind_image"), loading: "lazy", "data-testid": "image"}));
  } else {
    node = el("a", t("inbox.download") + ": " + name, {href: src, download: media.filename || "", "data-testid": "document"});
  }
  const box = el("div", null, {class: "media"});
  box.append(node);
  mediaNodes.set(m.id, box);
  return box;
}

function authorName(m) {
  if (m.author === "bot") return "Bot";
  return m.author_name || t("inbox.author_" + m.author);
}

function messageNode(m) {
  const node = el("div", null, {class: `bubble ${m.direction} author-${m.author}`, "data-testid": "message", "data-author": m.author,
                                "data-id": m.id, "data-author-id": m.author_id || ""});
  const head = el("span", null, {class: "who"});
  head.append(el("span", authorName(m)));
  head.append(el("time", fmtDateTime(m.created_at), {datetime: m.created_at}));
  node.append(head);
  if (m.text) node.append(formatted(m.text, "div", "body"));
  if (m.media) node.append(mediaNode(m));
  if (m.transcript) node.append(el("div", t("inbox.transcript") + ": " + m.transcript, {class: "muted transcript"}));
  if (m.direction === "out" && m.status === "failed") node.append(el("div", t("inbox.not_sent"), {class: "failed"}));
  return node;
}

function renderMessages(d, fresh) {
  const box = $("messages");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 30;
  box.replaceChildren(...d.messages.map(messageNode));
  if (atBottom || fresh) box.scrollTop = box.scrollHeight;
  const incoming = d.messages.filter((m) => !seen.has(m.id) && m.direction === "in");
  if (!fresh && incoming.length) {
    const last = incoming[incoming.length - 1];
    $("announce").textContent = t("inbox.new_message", {name: d.conversation.contact_name || d.conversation.contact_phone || "", text: last.text || last.transcript || ""});
  }
  seen = new Set(d.messages.map((m) => m.id));
}

function renderHead(c) {
  $("c-name").textContent = c.contact_name || c.contact_phone || "?";
  $("c-phone").textContent = c.contact_phone || "";
  $("c-channel").textContent = c.channel + (c.account ? " · " + c.account : "");
  const owner = $("c-owner");
  owner.textContent = t("inbox.owner_" + c.owner);
  owner.className = "badge " + c.owner;
  owner.dataset.owner = c.owner;
  $("c-agent").textContent = c.assigned_agent_name || t("inbox.unassigned");
  $("c-team").textContent = c.team_name || "";
}

function renderActions(c) {
  const mine = c.assigned_agent_id === user.id, lead = user.role !== "agent";
  $("claim").hidden = c.owner !== "queued";
  $("release").hidden = !(c.owner === "human" && (mine || lead));
  $("resolve").hidden = !(c.owner === "queued" || (c.owner === "human" && (mine || lead)));
  const canSend = !(c.owner === "closed" || (c.owner === "human" && !mine));
  $("send").disabled = !canSend;
  $("transfer").disabled = user.role === "agent" && !mine;
  const sel = $("transfer-to"), keep = sel.value;
  sel.replaceChildren(el("option", t("inbox.transfer_pick"), {value: ""}));
  for (const a of state.agents) if (a.id !== c.assigned_agent_id) sel.append(el("option", t("inbox.agent_option", {name: a.name}), {value: "agent:" + a.id}));
  for (const x of state.teams) sel.append(el("option", t("inbox.team_option", {name: x.name}), {value: "team:" + x.id}));
  sel.value = keep;
}

export function render(fresh = false) {
  const d = state.detail;
  if (!d) return;
  const c = d.conversation;
  $("placeholder").hidden = true;
  $("conversation").hidden = false;
  $("side").hidden = false;
  document.body.classList.add("conv-open");
  renderHead(c);
  $("c-sla").textContent = d.ticket ? [slaText("first", d.ticket.first_response), slaText("resolution", d.ticket.resolution)].join(" · ") : "";
  renderActions(c);
  renderMessages(d, fresh);
  emit("rendered", d, fresh);
}

export async function loadDetail(fresh = false) {
  if (!state.current) return;
  const id = state.current;
  let d;
  try { d = await api("GET", "/api/v1/conversations/" + id); } catch (err) { showError(err, $("error")); return; }
  if (id !== state.current) return;
  state.detail = d;
  render(fresh);
  if (document.visibilityState === "visible") {
    api("POST", `/api/v1/conversations/${id}/read`).then(() => emit("read", id)).catch(() => {});
  }
}

export async function openConversation(id, {push = true} = {}) {
  if (!id) return;
  const changed = id !== state.current;
  state.current = id;
  if (push && location.pathname !== "/inbox/conversations/" + id) history.pushState({id}, "", "/inbox/conversations/" + id);
  if (changed) { seen = new Set(); mediaNodes.clear(); showError(null, $("error")); state.detail = null; }
  for (const link of document.querySelectorAll(".conv-link")) {
    const on = link.dataset.id === id;
    link.closest("li").classList.toggle("selected", on);
    if (on) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
  }
  await loadDetail(changed);
  emit("opened", id, changed);
}

export function closeConversation() {
  state.current = null;
  state.detail = null;
  document.body.classList.remove("conv-open");
  $("conversation").hidden = true;
  $("side").hidden = true;
  $("placeholder").hidden = false;
  if (location.pathname !== "/inbox") history.pushState({}, "", "/inbox");
}

/** Run an action on the open conversation; errors show in the header's alert. */
export async function act(fn) {
  showError(null, $("error"));
  try { await fn(); } catch (err) { if (err.status !== 401) showError(err, $("error")); }
  emit("changed");
  await loadDetail();
}

export const actions = {
  claim: () => act(async () => {
    await api("POST", `/api/v1/conversations/${state.current}/claim`);
    $("reply").focus();
  }),
  release: () => act(() => api("POST", `/api/v1/conversations/${state.current}/release`)),
  resolve: () => act(() => api("POST", `/api/v1/conversations/${state.current}/resolve`)),
  transfer: () => act(async () => {
    const [kind, id] = ($("transfer-to").value || ":").split(":");
    if (!id) return;
    const c = state.detail.conversation;
    if (kind === "agent" && user.role !== "agent" && c.assigned_agent_id !== user.id) {
      await api("POST", `/api/v1/conversations/${state.current}/assign`, {agent_id: id});  // reassign
    } else {
      await api("POST", `/api/v1/conversations/${state.current}/transfer`, kind === "team" ? {team_id: id} : {agent_id: id});
    }
  }),
};

export function initConversation() {
  $("claim").addEventListener("click", actions.claim);
  $("release").addEventListener("click", actions.release);
  $("resolve").addEventListener("click", actions.resolve);
  $("transfer").addEventListener("click", actions.transfer);
  $("back").addEventListener("click", () => {
    const id = state.current;
    closeConversation();
    const link = id && document.querySelector(`.conv-link[data-id="${id}"]`);
    (link || $("search")).focus();
  });
  const side = (open) => {
    document.body.classList.toggle("side-open", open);
    $("side-toggle").setAttribute("aria-expanded", String(open));
    (open ? $("side-close") : $("side-toggle")).focus();
  };
  $("side-toggle").addEventListener("click", () => side(!document.body.classList.contains("side-open")));
  $("side-close").addEventListener("click", () => side(false));
}
