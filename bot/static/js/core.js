// Shared page code: texts (the one i18n catalog), the one fetch helper, DOM and locale helpers.
// Every state-changing request goes through api(): headers such as a CSRF token are added here.

const dataNode = document.getElementById("i18n-data");
const TEXTS = dataNode ? JSON.parse(dataNode.textContent || "{}") : {};

export const lang = document.documentElement.lang || "es";
export const locale = document.documentElement.dataset.locale || (lang === "en" ? "en-US" : "es-MX");
export const user = {
  id: document.body.dataset.userId || null,
  role: document.body.dataset.userRole || null,
  name: document.body.dataset.userName || null,
};

/** The text for key ("area.name") in the page language, with {placeholders} filled in. */
export function t(key, params) {
  let text = TEXTS[key];
  if (text === undefined) text = key;
  if (params) for (const [k, v] of Object.entries(params)) text = text.split("{" + k + "}").join(String(v));
  return text;
}

export class ApiError extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

/** Extra headers for every request: the session's CSRF token (the server refuses a
 * cookie-authenticated change without it). */
export const requestHeaders = document.body.dataset.csrf ? {"X-CSRF-Token": document.body.dataset.csrf} : {};

function errorMessage(data, status) {
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail.map((d) => {
      const field = Array.isArray(d.loc) ? d.loc.filter((x) => x !== "body" && typeof x === "string").pop() : null;
      return field ? `${field}: ${d.msg}` : d.msg;
    }).join("; ");
  }
  return t("common.error_status", {status});
}

/** fetch() for our API: JSON in and out, errors (already in the user's language) thrown. */
export async function api(method, path, body, options = {}) {
  const headers = {"Accept": "application/json", "Accept-Language": lang, ...requestHeaders};
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  let res;
  try {
    res = await fetch(path, {method, headers, body: payload, credentials: "same-origin", signal: options.signal});
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(t("common.offline"), 0, "offline");
  }
  if (res.status === 401 && !options.noRedirect) {
    // drafts live in localStorage, so nothing typed is lost on the way to /login
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new ApiError(t("common.session_ended"), 401, "login");
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const code = data && (data.code || (Array.isArray(data.detail) && data.detail[0] && data.detail[0].type));
    throw new ApiError(errorMessage(data, res.status), res.status, code || null);
  }
  return options.withHeaders ? {data, headers: res.headers} : data;
}

/** A new element; text is always set as text (customer text never becomes markup). */
export function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

const dateTime = new Intl.DateTimeFormat(locale, {dateStyle: "medium", timeStyle: "short"});
const dateOnly = new Intl.DateTimeFormat(locale, {dateStyle: "medium"});
const timeOnly = new Intl.DateTimeFormat(locale, {timeStyle: "short"});
const numbers = new Intl.NumberFormat(locale);

export function fmtDateTime(iso) { return iso ? dateTime.format(new Date(iso)) : "—"; }
export function fmtDate(iso) { return iso ? dateOnly.format(new Date(iso)) : "—"; }
export function fmtNumber(n) { return n === null || n === undefined ? "—" : numbers.format(n); }

/** Today: the time; otherwise the date (list rows). */
export function fmtWhen(iso) {
  if (!iso) return "";
  const d = new Date(iso), now = new Date();
  return d.toDateString() === now.toDateString() ? timeOnly.format(d) : dateOnly.format(d);
}

/** A duration in seconds as "3 min", "2 h 5 min", "4 d" in the page language. */
export function fmtAge(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("common.age_s", {n: numbers.format(s)});
  const m = Math.floor(s / 60);
  if (m < 60) return t("common.age_m", {n: numbers.format(m)});
  const h = Math.floor(m / 60);
  if (h < 24) return t("common.age_h", {h: numbers.format(h), m: numbers.format(m % 60)});
  return t("common.age_d", {n: numbers.format(Math.floor(h / 24))});
}

let toastTimer = null;
/** A short message in the live region at the bottom of every page. */
export function toast(message, isError = false) {
  const node = $("toast");
  if (!node) return;
  node.textContent = message;
  node.classList.toggle("error", isError);
  node.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.remove("show"), 4000);
}

/** Show an error in a form's message node (role=alert) or as a toast. */
export function showError(err, node) {
  const message = err ? (err.message || String(err)) : "";
  if (node) { node.textContent = message; node.classList.toggle("err", !!message); }
  else if (message) toast(message, true);
}

/** Run fn, reporting its error in node (or a toast); returns fn's value or undefined. */
export async function attempt(fn, node) {
  if (node) showError(null, node);
  try { return await fn(); } catch (err) { if (err.status !== 401) showError(err, node); return undefined; }
}
