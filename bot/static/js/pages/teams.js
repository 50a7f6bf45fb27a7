// Teams and their skills and members (admins edit; supervisors see who is in which team).
import {api, t, el, $, user, attempt} from "/static/js/core.js";

const admin = user.role === "admin";
const skillsOf = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

function teamCard(team, people) {
  const card = el("section", null, {class: "card", "data-testid": "team", "data-name": team.name});
  card.append(el("h2", team.name));
  const form = el("form", null, {class: "stack"});
  const skills = el("input", null, {value: team.skills.join(", "), "data-testid": "team-skills", "aria-label": t("admin.skills_of", {name: team.name})});
  skills.disabled = !admin;
  const skillLabel = el("label", t("admin.skills"));
  skillLabel.append(skills);
  form.append(skillLabel);
  const box = el("fieldset", null, {class: "inline"});
  box.append(el("legend", t("admin.members")));
  for (const p of people) {
    const label = el("label", null, {class: "inline"});
    const check = el("input", null, {type: "checkbox", value: p.id, "data-testid": "member"});
    check.checked = team.members.includes(p.id);
    check.disabled = !admin;
    label.append(check, el("span", `${p.name} (${t("common.role_" + p.role)})`));
    box.append(label);
  }
  form.append(box);
  const msg = el("p", null, {class: "msg", role: "status"});
  if (admin) {
    const actions = el("div");
    actions.append(el("button", t("common.save"), {type: "submit", "data-testid": "team-save"}));
    form.append(actions);
  }
  form.append(msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const ids = [...box.querySelectorAll("input:checked")].map((c) => c.value);
    const ok = await attempt(async () => {
      await api("PATCH", `/api/v1/teams/${team.id}`, {skills: skillsOf(skills.value)});
      await api("PUT", `/api/v1/teams/${team.id}/members`, {user_ids: ids});
      return true;
    }, msg);
    if (ok) msg.textContent = t("common.saved");
  });
  card.append(form);
  return card;
}

async function load() {
  const [teams, people] = await Promise.all([
    attempt(() => api("GET", "/api/v1/teams"), $("msg")),
    attempt(() => api("GET", "/api/v1/agents"), $("msg"))]);
  if (!teams || !people) return;
  const list = $("teams");
  list.replaceChildren(...teams.map((team) => teamCard(team, people)));
  if (!teams.length) list.append(el("p", t("admin.no_teams"), {class: "muted"}));
}

if (admin) {
  $("create").addEventListener("submit", async (e) => {
    e.preventDefault();
    const made = await attempt(() => api("POST", "/api/v1/teams", {name: $("t-name").value, skills: skillsOf($("t-skills").value)}), $("create-msg"));
    if (!made) return;
    $("create").reset();
    load();
  });
}
load();
