// The layout's own behaviour on every page: the language selector and the phone menu.
import {$} from "/static/js/core.js";

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
