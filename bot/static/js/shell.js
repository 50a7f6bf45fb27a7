// The layout's own behaviour on every page: the language selector, the phone menu and
// server-rendered dates in the reader's locale.
import {$, fmtDateTime, fmtDate, locale} from "/static/js/core.js";

const select = $("lang");
if (select) {
  select.addEventListener("change", () => {
    document.cookie = `atiende_lang=${select.value}; path=/; max-age=31536000; samesite=lax`;
    location.reload();
  });
}

const toggle = $("menu-toggle");
if (toggle) {
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("menu-open", open);
  });
}

// server-rendered dates in the reader's locale: in their time zone, or in UTC to the second
// where the page says UTC (the audit log)
const utc = new Intl.DateTimeFormat(locale, {dateStyle: "medium", timeStyle: "medium", timeZone: "UTC"});
for (const node of document.querySelectorAll("time[data-format]")) {
  const iso = node.getAttribute("datetime");
  if (!iso) continue;
  const format = node.dataset.format;
  node.textContent = format === "date" ? fmtDate(iso) : format === "utc" ? utc.format(new Date(iso)) : fmtDateTime(iso);
}
