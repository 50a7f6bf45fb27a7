// The composer: Enter sends, Shift+Enter adds a line; "/" opens the canned replies, filtered
// as you type, inserted at the cursor; a draft per conversation (kept in localStorage, so
// it survives a reload, a lost session and a re-login); images and PDFs; the preview of
// WhatsApp formatting.
import {api, t, el, $, user} from "/static/js/core.js";
import {appendFormatted} from "/static/js/format.js";
import {state, emit} from "/static/js/inbox/state.js";
import {act} from "/static/js/inbox/conversation.js";

const reply = () => $("reply");
let menu = {open: false, items: [], index: 0, start: 0};
let saveTimer = null;

const draftKey = (id) => `atiende.draft.${user.id}.${id}`;
export function loadDraft(id) { return localStorage.getItem(draftKey(id)) || ""; }
function saveDraft() {
  if (!state.current) return;
  const text = reply().value;
  if (text) localStorage.setItem(draftKey(state.current), text);
  else localStorage.removeItem(draftKey(state.current));
}

function token() {
  // the "/word" just before the cursor, at the start or after a space
  const box = reply(), before = box.value.slice(0, box.selectionStart);
  const m = /(^|\s)\/([^\s/]*)$/.exec(before);
  return m ? {start: before.length - m[2].length - 1, query: m[2].toLowerCase()} : null;
}

function matches(query) {
  return state.canned.filter((c) => c.shortcut.startsWith(query)).concat(
    state.canned.filter((c) => !c.shortcut.startsWith(query) && query && (c.shortcut.includes(query) || c.text.toLowerCase().includes(query))));
}

function renderMenu() {
  const list = $("canned-menu");
  list.replaceChildren();
  menu.items.forEach((c, i) => {
    const item = el("li", null, {role: "option", id: "canned-" + i, class: "canned-item", "aria-selected": String(i === menu.index), "data-testid": "canned-item"});
    item.append(el("strong", "/" + c.shortcut));
    item.append(el("span", c.text, {class: "muted"}));
    item.addEventListener("mousedown", (e) => { e.preventDefault(); menu.index = i; insertCanned(); });
    list.append(item);
  });
  if (!menu.items.length) list.append(el("li", t("inbox.no_canned"), {class: "muted", role: "option", "aria-disabled": "true"}));
  reply().setAttribute("aria-activedescendant", menu.items.length ? "canned-" + menu.index : "");
}

function openMenu(found) {
  menu = {open: true, items: matches(found.query), index: 0, start: found.start};
  $("canned-menu").hidden = false;
  renderMenu();
}

function closeMenu() {
  menu.open = false;
  $("canned-menu").hidden = true;
  reply().removeAttribute("aria-activedescendant");
}

function fill(text) {
  const c = state.detail && state.detail.conversation;
  const name = c && c.contact_name ? c.contact_name.split(" ")[0] : "";
  return text.split("{nombre}").join(name).split("{name}").join(name).split("{agente}").join(user.name || "").split("{agent}").join(user.name || "");
}

function insertCanned() {
  const chosen = menu.items[menu.index];
  if (!chosen) { closeMenu(); return; }
  const box = reply(), end = box.selectionStart;
  const text = fill(chosen.text);
  box.setRangeText(text, menu.start, end, "end");  // replaces "/query", keeps the rest
  closeMenu();
  box.focus();
  update();
}

function update() {
  saveDraft();
  const text = reply().value;
  const preview = $("preview");
  const marked = /[*_~`]/.test(text);
  preview.hidden = !marked;
  if (marked) {
    preview.replaceChildren(el("span", t("inbox.preview") + ": ", {class: "muted"}));
    appendFormatted(preview, text);
  }
}

async function send() {
  const box = reply(), text = box.value.trim();
  const file = $("file").files[0], voice = $("voice-file").files[0];
  if (!state.current || (!text && !file && !voice) || $("send").disabled) return;
  const id = state.current;
  await act(async () => {
    if (file || voice) {
      const form = new FormData();
      if (file) form.append("file", file, file.name); else form.append("audio", voice, voice.name);
      if (text) form.append("caption", text);
      await api("POST", `/api/v1/conversations/${id}/${file ? "attachments" : "voice"}`, form);
      $("file").value = ""; $("voice-file").value = ""; $("file-name").textContent = "";
    } else {
      await api("POST", `/api/v1/conversations/${id}/messages`, {text});
    }
    if (state.current === id) box.value = "";
    localStorage.removeItem(draftKey(id));
    update();
  });
}

export function restoreDraft(id) {
  reply().value = loadDraft(id);
  closeMenu();
  update();
}

export function initComposer() {
  const box = reply();
  box.addEventListener("input", () => {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(saveDraft, 150);
    const found = token();
    if (found) openMenu(found); else if (menu.open) closeMenu();
    update();
  });
  box.addEventListener("keydown", (e) => {
    if (e.isComposing) return;
    if (menu.open) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const n = menu.items.length || 1;
        menu.index = (menu.index + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
        renderMenu();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); insertCanned(); return; }
      if (e.key === "Escape") { e.preventDefault(); closeMenu(); return; }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      send();
    }
  });
  box.addEventListener("blur", () => setTimeout(closeMenu, 150));
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  for (const id of ["file", "voice-file"]) {
    $(id).addEventListener("change", () => {
      const f = $(id).files[0];
      if (f && id === "file") $("voice-file").value = "";
      if (f && id === "voice-file") $("file").value = "";
      $("file-name").textContent = f ? f.name : "";
    });
  }
  window.addEventListener("beforeunload", saveDraft);
  emit("composer-ready");
}
