// Admins: staff accounts: create, change role, deactivate or reactivate, reset a password.
import {api, t, el, $, user, attempt} from "/static/js/core.js";

function roleSelect(u) {
  const select = el("select", null, {"aria-label": t("admin.role_of", {name: u.name}), "data-testid": "role"});
  for (const r of ["agent", "supervisor", "admin"]) select.append(el("option", t("common.role_" + r), {value: r}));
  select.value = u.role;
  select.disabled = u.id === user.id;
  select.addEventListener("change", () => update(u, {role: select.value}));
  return select;
}

async function update(u, body) {
  const ok = await attempt(() => api("PATCH", `/api/v1/users/${u.id}`, body), $("msg"));
  await load();
  if (ok) $("msg").textContent = t("common.saved");
}

function resetForm(u) {
  const form = el("form", null, {class: "inline"});
  const input = el("input", null, {type: "password", minlength: "8", required: true, autocomplete: "new-password",
                                   "aria-label": t("admin.new_password_for", {name: u.name}), "data-testid": "reset-password"});
  form.append(input, el("button", t("admin.reset_password"), {type: "submit", class: "secondary", "data-testid": "reset"}));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const ok = await attempt(() => api("POST", `/api/v1/users/${u.id}/password`, {password: input.value}), $("msg"));
    if (ok !== undefined) { input.value = ""; $("msg").textContent = t("admin.password_reset", {name: u.name}); }
  });
  return form;
}

function row(u) {
  const tr = el("tr", null, {"data-testid": "user-row", "data-email": u.email});
  tr.append(el("td", u.name), el("td", u.email));
  const role = el("td");
  role.append(roleSelect(u));
  tr.append(role);
  tr.append(el("td", u.active ? t("admin.active") : t("admin.inactive"), {"data-testid": "status"}));
  const actions = el("td", null, {class: "stack"});
  if (u.id !== user.id) {
    actions.append(el("button", u.active ? t("admin.deactivate") : t("admin.reactivate"), {
      type: "button", class: u.active ? "danger" : "", "data-testid": "toggle-active",
      onclick: () => update(u, {active: !u.active})}));
  }
  actions.append(resetForm(u));
  tr.append(actions);
  return tr;
}

async function load() {
  const users = await attempt(() => api("GET", "/api/v1/users"));
  if (!users) return;
  $("users").replaceChildren(...users.map(row));
}

$("create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const made = await attempt(() => api("POST", "/api/v1/users", {
    name: $("u-name").value, email: $("u-email").value, role: $("u-role").value, password: $("u-password").value,
  }), $("create-msg"));
  if (!made) return;
  $("create").reset();
  $("create-msg").textContent = t("admin.user_created", {email: made.email});
  load();
});
load();
