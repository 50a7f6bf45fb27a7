// The LLM chain: status, models and keys (masked), test, edit the YAML, recent calls.
// Every value from the server is written as text.
import {api, t, el, $, fmtDateTime} from "/static/js/core.js";

function row(tbody, cells, cls) {
  const tr = el("tr");
  for (const value of cells) tr.append(el("td", value === null || value === undefined ? "—" : String(value), {class: cls}));
  tbody.append(tr);
}

function renderChain(chain) {
  const status = $("status");
  status.textContent = (chain.configured ? t("llm_admin.configured") : t("llm_admin.unconfigured")) +
    ` · ${t("llm_admin.source")}: ${chain.source} · ${t("llm_admin.budget")}: ${chain.budget_seconds}s` +
    (chain.warm_seconds ? ` · ${t("llm_admin.warm")}: ${chain.warm_seconds.toFixed(2)}s` : "") +
    (chain.error ? ` · ${chain.error}` : "");
  status.className = chain.error ? "err" : "muted";
  const purposes = $("purposes");
  purposes.replaceChildren();
  for (const [use, order] of Object.entries(chain.purposes)) row(purposes, [use, order.join(" → ")]);
  const models = $("models");
  models.replaceChildren();
  for (const m of chain.models) row(models, [m.model_name, m.provider, m.model, m.api_base, m.api_key, m.timeout]);
}

async function loadChain() {
  const chain = await api("GET", "/api/v1/llm/chain");
  renderChain(chain);
  $("yaml").value = chain.yaml;
}

async function loadCalls() {
  const data = await api("GET", "/api/v1/llm/calls?limit=30");
  const calls = $("calls");
  calls.replaceChildren();
  for (const c of data.calls) row(calls, [fmtDateTime(c.created_at), c.purpose, c.answered_by || c.model_group, c.outcome,
    c.rejected, Math.round(c.latency_ms), c.prompt_tokens + c.completion_tokens,
    c.cost_usd === null ? null : c.cost_usd.toFixed(6), c.error]);
}

$("save").addEventListener("click", async () => {
  const out = $("saved");
  try {
    renderChain(await api("PUT", "/api/v1/llm/chain", {yaml: $("yaml").value}));
    out.textContent = t("llm_admin.saved"); out.className = "ok";
    await loadChain();
  } catch (err) { out.textContent = err.message; out.className = "err"; }
});

$("test").addEventListener("click", async () => {
  const tests = $("tests");
  tests.replaceChildren();
  row(tests, [t("llm_admin.testing")]);
  try {
    const results = await api("POST", "/api/v1/llm/chain/test");
    tests.replaceChildren();
    for (const r of results) row(tests, [r.model_name, r.ok ? t("llm_admin.ok") : t("llm_admin.fail"),
      `${Math.round(r.latency_ms)} ms`, r.answered_by, r.text || r.error], r.ok ? "ok" : "err");
  } catch (err) { tests.replaceChildren(); row(tests, [err.message], "err"); }
  await loadCalls();
});

loadChain().then(loadCalls).catch((err) => { $("status").textContent = err.message; });
