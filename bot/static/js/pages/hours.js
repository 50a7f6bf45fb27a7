// Admins: business hours and holidays, stored in the database (the environment's values
// are the defaults until saved).
import {api, t, $, attempt} from "/static/js/core.js";

function show(s) {
  $("h-hours").value = s.hours;
  $("h-tz").value = s.timezone;
  $("h-holidays").value = s.holidays.join("\n");
  $("source").textContent = s.source === "database" ? t("admin.source_db", {who: s.updated_by || "—"}) : t("admin.source_env");
}

async function load() {
  const s = await attempt(() => api("GET", "/api/v1/handoff/schedule"), $("msg"));
  if (s) show(s);
}

$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const holidays = $("h-holidays").value.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
  const s = await attempt(() => api("PUT", "/api/v1/handoff/schedule", {hours: $("h-hours").value, timezone: $("h-tz").value.trim(), holidays}), $("msg"));
  if (s) { show(s); $("msg").textContent = t("common.saved"); $("msg").classList.remove("err"); }
});
$("reset").addEventListener("click", async () => {
  const s = await attempt(() => api("DELETE", "/api/v1/handoff/schedule"), $("msg"));
  if (s) { show(s); $("msg").textContent = t("common.saved"); }
});
load();
