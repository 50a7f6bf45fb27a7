// The knowledge-base editor: articles (search, edit with preview, history and restore),
// the product catalog, intent examples, import upload, try a question.
// Every value from the knowledge base or a customer goes in as text.
import {api, t, el, $, fmtDateTime} from "/static/js/core.js";

const kb = (path) => "/api/v1/kb" + path;
const TABS = ["list", "edit", "catalog", "intents", "import", "try"];
const INTENTS = ["greeting", "thanks", "question", "product", "human_request", "complaint", "opt_out", "other"];

function cell(tr, text) { const td = el("td", text ?? ""); tr.append(td); return td; }
function linkCell(tr, text, label, onclick) {
  const td = el("td");
  td.append(el("button", text, {type: "button", class: "link", "aria-label": label, onclick}));
  tr.append(td);
  return td;
}
function say(node, ok, text) { node.className = ok ? "ok" : "err"; node.textContent = text; }
async function run(node, fn) {
  try { return await fn(); } catch (err) { if (err.status !== 401) say(node, false, err.message); return undefined; }
}

function show(tab) {
  for (const s of document.querySelectorAll(".kb-tab")) s.hidden = s.id !== tab;
  for (const b of document.querySelectorAll(".subtabs button")) b.setAttribute("aria-pressed", String(b.dataset.tab === tab));
}
for (const b of document.querySelectorAll(".subtabs button")) b.addEventListener("click", () => show(b.dataset.tab));

// -- articles ---------------------------------------------------------------------------
async function load() {
  const params = new URLSearchParams({q: $("q").value, include_deleted: $("deleted").checked});
  const arts = await run($("e-msg"), () => api("GET", kb("/articles?" + params)));
  if (!arts) return;
  const rows = $("rows");
  rows.replaceChildren();
  for (const a of arts) {
    const tr = el("tr", null, {"data-testid": "a-row"});
    linkCell(tr, a.id, t("kb.edit_article", {id: a.id}), () => edit(a.id));
    cell(tr, a.title + (a.deleted ? t("kb.deleted") : "")); cell(tr, a.kind); cell(tr, a.version); cell(tr, a.updated_by);
    rows.append(tr);
  }
}
let timer = null;
async function preview() {
  try {
    const out = await api("POST", kb("/preview"), {body: $("e-body").value});
    $("preview").srcdoc = out.html;  // server-rendered, raw HTML escaped, sandboxed frame
  } catch (err) { /* the preview waits for the next keystroke */ }
}
$("e-body").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(preview, 300); });
async function edit(id, message) {
  show("edit");
  const a = await run($("e-msg"), () => api("GET", kb("/articles/" + encodeURIComponent(id))));
  if (!a) return;
  $("e-id").value = a.id; $("e-kind").value = a.kind; $("e-title").value = a.title;
  $("e-tags").value = a.tags.join(", "); $("e-body").value = a.body; $("e-questions").value = a.questions.join("\n");
  if (message) say($("e-msg"), true, message); else $("e-msg").textContent = "";
  preview();
  articleHistory(a.id);
}
async function articleHistory(id) {
  const list = $("history");
  list.replaceChildren();
  const versions = await run($("e-msg"), () => api("GET", kb("/articles/" + encodeURIComponent(id) + "/versions")));
  for (const v of versions || []) {
    const li = el("li", `v${v.version} ${v.action} · ${v.edited_by} · ${fmtDateTime(v.edited_at)} `, {"data-testid": "a-version"});
    li.append(el("button", "↺", {type: "button", class: "secondary", "aria-label": t("kb.restore", {v: v.version}), "data-testid": "a-restore",
      onclick: async () => {
        const out = await run($("e-msg"), () => api("POST", kb(`/articles/${encodeURIComponent(id)}/versions/${v.version}/restore`)));
        if (out) { await edit(id, t("kb.restored", {from: v.version, v: out.version})); load(); }
      }}));
    list.append(li);
  }
}
$("new").addEventListener("click", () => {
  for (const i of ["e-id", "e-title", "e-tags", "e-body", "e-questions"]) $(i).value = "";
  $("history").replaceChildren(); $("e-msg").textContent = ""; show("edit"); $("e-id").focus();
});
$("save").addEventListener("click", async () => {
  const id = $("e-id").value.trim();
  if (!id) { say($("e-msg"), false, t("kb.need_id")); return; }
  const body = {title: $("e-title").value, kind: $("e-kind").value, body: $("e-body").value,
    tags: $("e-tags").value.split(",").map((s) => s.trim()).filter(Boolean),
    questions: $("e-questions").value.split("\n").map((s) => s.trim()).filter(Boolean)};
  const out = await run($("e-msg"), () => api("PUT", kb("/articles/" + encodeURIComponent(id)), body));
  if (out) { say($("e-msg"), true, `✓ v${out.version}`); articleHistory(id); load(); }
});
$("del").addEventListener("click", async () => {
  const id = $("e-id").value.trim();
  if (!id || !confirm(t("kb.confirm_article"))) return;
  const out = await run($("e-msg"), () => api("DELETE", kb("/articles/" + encodeURIComponent(id))));
  if (out !== undefined) { say($("e-msg"), true, `✓ ${t("kb.removed")}`); articleHistory(id); load(); }
});
$("upload").addEventListener("click", async () => {
  const form = new FormData();
  for (const f of $("files").files) form.append("files", f);
  form.append("replace", $("replace").checked);
  const list = $("import-result");
  list.replaceChildren();
  let out;
  try { out = await api("POST", kb("/import"), form); } catch (err) { list.append(el("li", err.message, {class: "err"})); return; }
  for (const f of out.files) {
    list.append(el("li", f.ok ? t("kb.import_file", f) : `${f.source}${f.line ? ":" + f.line : ""}: ${f.error}`, {class: f.ok ? "ok" : "err"}));
  }
  list.append(el("li", out.summary));
  load(); loadProducts();
});
$("ask").addEventListener("click", async () => {
  let out;
  try { out = await api("POST", kb("/try"), {text: $("question").value}); } catch (err) { $("answer").textContent = err.message; return; }
  $("answer").textContent = out.replies.join("\n\n");
  $("decision").textContent = t("kb.decision", {intent: out.intent, confidence: out.confidence, escalate: out.escalate,
    reason: out.reason ? ` (${out.reason})` : "", sources: out.sources.join(", "), ms: out.retrieval_ms});
  const hits = $("hits");
  hits.replaceChildren();
  for (const h of out.hits) {
    const tr = el("tr");
    cell(tr, `${h.source_id} (${h.role})`); cell(tr, h.score); cell(tr, h.similarity); cell(tr, h.text_rank);
    cell(tr, (h.heading ? h.heading + " — " : "") + h.text.slice(0, 220));
    hits.append(tr);
  }
});

// -- catalog ------------------------------------------------------------------------------
let ptimer = null;
async function loadProducts() {
  const params = new URLSearchParams({q: $("p-q").value, include_deleted: $("p-deleted").checked});
  const products = await run($("p-msg"), () => api("GET", kb("/products?" + params)));
  if (!products) return;
  const rows = $("p-rows");
  rows.replaceChildren();
  for (const p of products) {
    const tr = el("tr", null, {"data-testid": "p-row"});
    linkCell(tr, p.sku, t("kb.edit_product", {sku: p.sku}), () => editProduct(p.sku));
    cell(tr, p.name + (p.deleted ? t("kb.deleted") : "")); cell(tr, p.category);
    cell(tr, `$${p.price} ${p.currency}`); cell(tr, p.stock === null ? t("kb.unknown") : p.stock); cell(tr, p.version);
    rows.append(tr);
  }
}
function fillProduct(p) {
  $("p-sku").value = p.sku ?? ""; $("p-name").value = p.name ?? ""; $("p-desc").value = p.description ?? "";
  $("p-price").value = p.price ?? ""; $("p-currency").value = p.currency ?? "MXN";
  $("p-stock").value = p.stock ?? ""; $("p-category").value = p.category ?? "";
}
async function editProduct(sku) {
  const p = await run($("p-msg"), () => api("GET", kb("/products/" + encodeURIComponent(sku))));
  if (!p) return;
  fillProduct(p); $("p-msg").textContent = ""; productHistory(sku);
}
async function productHistory(sku) {
  const list = $("p-history");
  list.replaceChildren();
  const versions = await run($("p-msg"), () => api("GET", kb("/products/" + encodeURIComponent(sku) + "/versions")));
  for (const v of versions || []) {
    const li = el("li", `v${v.version} ${v.action} · ${v.edited_by} · ${fmtDateTime(v.edited_at)} · $${v.data.price} · ${v.data.stock ?? "-"} `, {"data-testid": "p-version"});
    li.append(el("button", "↺", {type: "button", class: "secondary", "aria-label": t("kb.restore", {v: v.version}), "data-testid": "p-restore",
      onclick: async () => {
        const out = await run($("p-msg"), () => api("POST", kb(`/products/${encodeURIComponent(sku)}/versions/${v.version}/restore`)));
        if (out) { say($("p-msg"), true, `✓ v${out.version}`); fillProduct(out); productHistory(sku); loadProducts(); }
      }}));
    list.append(li);
  }
}
$("p-form").addEventListener("submit", (e) => e.preventDefault());
$("p-new").addEventListener("click", () => { fillProduct({}); $("p-history").replaceChildren(); $("p-msg").textContent = ""; $("p-sku").focus(); });
$("p-save").addEventListener("click", async () => {
  const sku = $("p-sku").value.trim();
  if (!sku) { say($("p-msg"), false, t("kb.need_sku")); return; }
  const stock = $("p-stock").value.trim();
  const body = {name: $("p-name").value, description: $("p-desc").value, price: $("p-price").value.trim(),
    currency: $("p-currency").value.trim().toUpperCase(), stock: stock === "" ? null : stock, category: $("p-category").value};
  const out = await run($("p-msg"), () => api("PUT", kb("/products/" + encodeURIComponent(sku)), body));
  if (out) { say($("p-msg"), true, `✓ ${t("kb.saved")} v${out.version}`); fillProduct(out); productHistory(sku); loadProducts(); }
});
$("p-del").addEventListener("click", async () => {
  const sku = $("p-sku").value.trim();
  if (!sku || !confirm(t("kb.confirm_product"))) return;
  const out = await run($("p-msg"), () => api("DELETE", kb("/products/" + encodeURIComponent(sku))));
  if (out) { say($("p-msg"), true, `✓ ${t("kb.removed")} v${out.version}`); productHistory(sku); loadProducts(); }
});
$("p-q").addEventListener("input", () => { clearTimeout(ptimer); ptimer = setTimeout(loadProducts, 250); });
$("p-deleted").addEventListener("change", loadProducts);

// -- intent examples ------------------------------------------------------------------
function intentOptions() {
  const add = $("i-intent"), filter = $("i-filter");
  add.replaceChildren(); filter.replaceChildren(el("option", t("kb.all"), {value: ""}));
  for (const value of INTENTS) {
    for (const sel of [add, filter]) sel.append(el("option", `${t("kb.intent_" + value)} (${value})`, {value}));
  }
  add.value = "human_request";
}
async function loadExamples() {
  const params = new URLSearchParams({intent: $("i-filter").value, q: $("i-q").value});
  const examples = await run($("i-msg"), () => api("GET", kb("/intent-examples?" + params)));
  if (!examples) return;
  const rows = $("i-rows");
  rows.replaceChildren();
  $("i-count").textContent = t("kb.examples", {n: examples.length});
  for (const e of examples) {
    const tr = el("tr", null, {"data-testid": "i-row"});
    cell(tr, INTENTS.includes(e.intent) ? t("kb.intent_" + e.intent) : e.intent); cell(tr, e.text); cell(tr, e.created_by);
    const td = el("td");
    td.append(el("button", "✕", {type: "button", class: "secondary", "aria-label": t("kb.remove"), "data-testid": "i-remove",
      onclick: async () => {
        if (!confirm(t("kb.confirm_example"))) return;
        const ok = await run($("i-msg"), () => api("DELETE", kb("/intent-examples/" + e.id)));
        if (ok !== undefined) say($("i-msg"), true, `✓ ${t("kb.removed")}`);
        loadExamples();
      }}));
    tr.append(td);
    rows.append(tr);
  }
}
$("i-add").addEventListener("click", async () => {
  const out = await run($("i-msg"), () => api("POST", kb("/intent-examples"), {intent: $("i-intent").value, text: $("i-text").value}));
  if (out) { say($("i-msg"), true, `✓ ${t("kb.added")}`); $("i-text").value = ""; loadExamples(); }
});
let itimer = null;
$("i-q").addEventListener("input", () => { clearTimeout(itimer); itimer = setTimeout(loadExamples, 250); });
$("i-filter").addEventListener("change", loadExamples);
$("q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 250); });
$("deleted").addEventListener("change", load);

intentOptions(); loadProducts(); loadExamples(); load();
const first = document.body.dataset.tab || location.hash.slice(1);
if (TABS.includes(first)) show(first);
