// Knowledge-base suggestions page (/admin/kb/suggestions). Everything customers or agents
// wrote goes in with textContent, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const CAN_DECIDE = document.body.dataset.canDecide === "true";
  const L = {
    es: {
      customers: (n) => (n === 1 ? "1 cliente" : `${n} clientes`), lastAsked: "última vez",
      questions: "Lo que preguntaron", replies: "Lo que contestaron los agentes",
      masked: "Datos ocultados", none: "No hay sugerencias aquí.",
      kinds: {email: "correo", card: "tarjeta", phone: "teléfono", policy: "número de póliza/contrato",
              id: "RFC/CURP", name: "nombre"},
      draftLlm: "Borrador escrito por el LLM a partir de lo que contestaron los agentes",
      draftReplies: "Borrador: la respuesta de un agente",
      title: "Título", body: "Texto que responderá el bot", examples: "Preguntas de ejemplo (una por línea)",
      newArticle: "Nuevo artículo", extend: "Agregar a un artículo existente", article: "Artículo",
      heading: "Título de la nueva sección", approve: "Aprobar", dismiss: "Descartar",
      approved: (id) => `Aprobada: artículo ${id}`, dismissed: "Descartada",
      status: {pending: "pendiente", approved: "aprobada", dismissed: "descartada"},
      asArticle: (id, action) => (action === "extend" ? `agregada al artículo ${id}` : `artículo ${id}`),
    },
    en: {
      customers: (n) => (n === 1 ? "1 customer" : `${n} customers`), lastAsked: "last asked",
      questions: "What they asked", replies: "What agents replied",
      masked: "Masked data", none: "No suggestions here.",
      kinds: {email: "e-mail", card: "card", phone: "phone", policy: "policy/contract number",
              id: "RFC/CURP", name: "name"},
      draftLlm: "Draft written by the LLM from what the agents replied",
      draftReplies: "Draft: an agent's reply",
      title: "Title", body: "Text the bot will answer with", examples: "Example questions (one per line)",
      newArticle: "New article", extend: "Add to an existing article", article: "Article",
      heading: "Heading of the new section", approve: "Approve", dismiss: "Dismiss",
      approved: (id) => `Approved: article ${id}`, dismissed: "Dismissed",
      status: {pending: "pending", approved: "approved", dismissed: "dismissed"},
      asArticle: (id, action) => (action === "extend" ? `added to article ${id}` : `article ${id}`),
    },
  };
  let lang = localStorage.getItem("atiende.lang") || "es";
  let last = [];
  let articles = [];
  const tr = () => L[lang] || L.es;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  async function api(method, path, body) {
    const res = await fetch(path, {
      method, credentials: "same-origin",
      headers: body ? {"Content-Type": "application/json"} : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return null; }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const detail = data && data.detail;
      throw new Error(typeof detail === "string" ? detail
        : Array.isArray(detail) && detail.length ? detail[0].msg : String(res.status));
    }
    return data;
  }

  function applyLang(value) {
    lang = value; document.documentElement.lang = value; $("lang").value = value;
    localStorage.setItem("atiende.lang", value);
    document.querySelectorAll("[data-es]").forEach((n) => { n.textContent = n.dataset[value]; });
    render(last);
  }

  function list(title, items, testid) {
    const box = el("div");
    box.append(el("strong", title));
    const ul = el("ul"); ul.dataset.testid = testid;
    for (const text of items) ul.append(el("li", text));
    box.append(ul);
    return box;
  }

  function field(labelText, input) {
    const label = el("label", labelText); const box = el("div");
    box.append(label, input); return box;
  }

  function editor(s, status) {
    const form = el("div"); form.dataset.testid = "editor";
    const mode = el("select"); mode.dataset.testid = "mode";
    mode.append(new Option(tr().newArticle, "create"), new Option(tr().extend, "extend"));
    const target = el("select", null, "articles"); target.dataset.testid = "article";
    for (const a of articles) target.append(new Option(`${a.title} (${a.id})`, a.id));
    const targetBox = field(tr().article, target); targetBox.hidden = true;
    const title = el("input"); title.type = "text"; title.value = s.draft.title; title.maxLength = 300;
    title.dataset.testid = "title";
    const titleBox = field(tr().title, title);
    const body = el("textarea"); body.value = s.draft.body; body.dataset.testid = "body";
    const examples = el("textarea"); examples.value = s.example_questions.join("\n");
    examples.dataset.testid = "examples"; examples.style.minHeight = "4rem";
    mode.onchange = () => {
      const extend = mode.value === "extend";
      targetBox.hidden = !extend;
      titleBox.querySelector("label").textContent = extend ? tr().heading : tr().title;
    };
    const approve = el("button", tr().approve); approve.dataset.testid = "approve";
    const dismiss = el("button", tr().dismiss); dismiss.dataset.testid = "dismiss";
    approve.onclick = () => decide(s, status, async () => {
      const payload = {body: body.value, title: title.value || null,
                       questions: examples.value.split("\n").map((q) => q.trim()).filter(Boolean)};
      if (mode.value === "extend") payload.article_id = target.value;
      const done = await api("POST", `/api/v1/knowledge/suggestions/${s.id}/approve`, payload);
      return tr().approved(done.article_id);
    });
    dismiss.onclick = () => decide(s, status, async () => {
      await api("POST", `/api/v1/knowledge/suggestions/${s.id}/dismiss`);
      return tr().dismissed;
    });
    const actions = el("div", null, "actions"); actions.append(approve, dismiss, status);
    form.append(field("", mode), targetBox, titleBox, field(tr().body, body),
                field(tr().examples, examples), actions);
    return form;
  }

  async function decide(s, status, action) {
    status.className = ""; status.textContent = "…";
    try {
      status.textContent = await action(); status.className = "ok";
      setTimeout(load, 800);
    } catch (e) { status.textContent = e.message; status.className = "err"; }
  }

  function card(s) {
    const node = el("div", null, "card"); node.dataset.testid = "suggestion"; node.dataset.id = s.id;
    const head = el("h3");
    head.append(el("span", tr().customers(s.count), "badge"),
                el("span", tr().status[s.status] || s.status, `badge ${s.status}`),
                el("span", `${tr().lastAsked}: ${s.last_asked_at.slice(0, 16).replace("T", " ")}`, "muted"));
    node.append(head);
    const kinds = Object.entries(s.masked);
    if (kinds.length) {
      const masked = el("p", `${tr().masked}: ` + kinds.map(([k, n]) => `${tr().kinds[k] || k} × ${n}`).join(", "),
                        "badge masked");
      masked.dataset.testid = "masked"; node.append(masked);
    }
    if (s.article_id) node.append(el("p", tr().asArticle(s.article_id, s.action), "muted"));
    const cols = el("div", null, "cols");
    cols.append(list(tr().questions, s.questions, "questions"), list(tr().replies, s.replies, "replies"));
    node.append(cols);
    if (s.status === "pending") {
      node.append(el("p", s.draft.source === "llm" ? tr().draftLlm : tr().draftReplies, "muted"));
      const status = el("span"); status.setAttribute("role", "status"); status.dataset.testid = "result";
      if (CAN_DECIDE) node.append(editor(s, status));
      else node.append(list(tr().title, [s.draft.title], "draft-title"), list(tr().body, [s.draft.body], "draft-body"));
    }
    return node;
  }

  function render(items) {
    last = items;
    const box = $("list"); box.replaceChildren();
    if (!items.length) { box.append(el("p", tr().none, "muted")); return; }
    for (const s of items) box.append(card(s));
  }

  async function loadFigures() {
    const f = await api("GET", "/api/v1/knowledge/suggestions/figures");
    if (!f) return;
    $("f-closed").textContent = f.gaps_closed; $("f-answered").textContent = f.customers_answered;
    $("f-pending").textContent = f.pending; $("f-waiting").textContent = f.customers_waiting;
  }

  async function load() {
    $("error").textContent = "";
    const status = $("status").value;
    try {
      const items = await api("GET", "/api/v1/knowledge/suggestions" + (status === "all" ? "" : `?status=${status}`));
      render(items || []);
      await loadFigures();
    } catch (e) { $("error").textContent = e.message; }
  }

  async function start() {
    $("lang").onchange = () => applyLang($("lang").value);
    $("status").onchange = load;
    if (CAN_DECIDE) {
      try { articles = await api("GET", "/api/v1/kb/articles") || []; } catch (e) { articles = []; }
    }
    applyLang(lang);
    await load();
    document.body.dataset.ready = "1";
  }

  start();
})();
