// Everyone: change your own password (every session ends, this one too: sign in again).
import {api, t, $, attempt, showError} from "/static/js/core.js";

$("password").addEventListener("submit", async (e) => {
  e.preventDefault();
  if ($("p-new").value !== $("p-repeat").value) { showError(new Error(t("admin.passwords_differ")), $("msg")); return; }
  const done = await attempt(async () => {
    await api("POST", "/api/v1/auth/password", {current_password: $("p-current").value, new_password: $("p-new").value}, {noRedirect: true});
    return true;
  }, $("msg"));
  if (done) {
    $("msg").textContent = t("admin.password_changed");
    setTimeout(() => { location.href = "/login"; }, 1200);
  }
});

// every session of this user ends (other browsers, phones, this one): sign in again
$("logout-all").addEventListener("click", async () => {
  const done = await attempt(async () => { await api("POST", "/api/v1/auth/logout-everywhere", undefined, {noRedirect: true}); return true; }, $("msg"));
  if (done) location.href = "/login";
});
