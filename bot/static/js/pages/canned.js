// Canned replies (agents insert them with "/" in the composer) and label colours.
import {api, t, el, $, attempt} from "/static/js/core.js";

async function loadCanned() {
  const items = await attempt(() => api("GET", "/api/v1/canned-responses"), $("create-msg"));
  if (!items) return;
  const body = $("canned");
  body.replaceChildren();
  for (const c of items) {
    const tr = el("tr", null, {"data-testid": "canned-row"});
    tr.append(el("td", "/" + c.shortcut), el("td", c.text), el("td", c.language === "en" ? "English" : "Español"));
    const cell = el("td");
    cell.append(el("button", t("common.delete"), {type: "button", class: "danger", "data-testid": "c-delete",
      "aria-label": t("admin.delete_canned", {shortcut: c.shortcut}),
      onclick: async () => { await attempt(() => api("DELETE", `/api/v1/canned-responses/${c.id}`), $("create-msg")); loadCanned(); }}));
    tr.append(cell);
    body.append(tr);
  }
}

async function loadLabels() {
  const labels = await attempt(() => api("GET", "/api/v1/labels"), $("label-msg"));
  if (!labels) return;
  const list = $("labels");
  list.replaceChildren();
  if (!labels.length) list.append(el("li", t("admin.no_labels"), {class: "muted"}));
  for (const l of labels) {
    const li = el("li", null, {class: "inline", "data-testid": "label-color"});
    const chip = el("span", l.name, {class: "chip"});
    chip.style.backgroundColor = l.color;
    const input = el("input", null, {type: "color", value: l.color, "aria-label": t("admin.color_of", {label: l.name})});
    input.addEventListener("change", async () => {
      const ok = await attempt(() => api("PUT", `/api/v1/labels/${encodeURIComponent(l.name)}`, {color: input.value}), $("label-msg"));
      if (ok) { chip.style.backgroundColor = ok.color; $("label-msg").textContent = t("common.saved"); }
    });
    li.append(chip, input, el("span", t("admin.label_uses", {n: l.count}), {class: "muted"}));
    list.append(li);
  }
}

$("create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const made = await attempt(() => api("POST", "/api/v1/canned-responses", {
    shortcut: $("c-shortcut").value.replace(/^\//, ""), text: $("c-text").value, language: $("c-lang").value,
  }), $("create-msg"));
  if (!made) return;
  $("create").reset();
  $("create-msg").textContent = t("common.saved");
  loadCanned();
});
loadCanned();
loadLabels();
