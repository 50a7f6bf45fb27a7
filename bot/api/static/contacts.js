// The customer data page (/admin/contacts): look a customer up, export, erase.
// Everything shown comes from the API and is put in the page as text, never as HTML.
(function () {
  "use strict";
  const lookup = document.getElementById("lookup");
  const L = JSON.parse(lookup.dataset.labels);
  const phoneInput = document.getElementById("phone");
  const status = document.getElementById("status");
  const held = document.getElementById("held");
  const rows = document.getElementById("held-rows");
  const jsonLink = document.getElementById("json-link");
  const archiveLink = document.getElementById("archive-link");
  let current = null;

  function say(message, isError) {
    status.textContent = message;
    status.className = isError ? "error" : "";
  }

  function base(phone) {
    return "/api/v1/contacts/" + encodeURIComponent(phone);
  }

  async function detail(response) {
    try {
      const body = await response.json();
      const d = body.detail;
      if (typeof d === "string") return d;
      if (Array.isArray(d) && d.length) return d.map((e) => e.msg).join("; ");
    } catch (e) { /* not JSON */ }
    return response.status + " " + response.statusText;
  }

  function show(counts) {
    rows.replaceChildren();
    for (const [table, n] of counts) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = table;
      const value = document.createElement("td");
      value.textContent = String(n);
      tr.append(name, value);
      rows.append(tr);
    }
  }

  lookup.addEventListener("submit", async (event) => {
    event.preventDefault();
    const phone = phoneInput.value.trim();
    held.hidden = true;
    jsonLink.hidden = archiveLink.hidden = true;
    current = null;
    say("…");
    const response = await fetch(base(phone) + "/export", { credentials: "same-origin" });
    if (!response.ok) {
      say(await detail(response), true);
      return;
    }
    const doc = await response.json();
    current = phone;
    show(Object.entries(doc.data).map(([table, list]) => [table, list.length]));
    jsonLink.href = base(phone) + "/export";
    archiveLink.href = base(phone) + "/export/archive";
    jsonLink.hidden = archiveLink.hidden = false;
    held.hidden = false;
    say((doc.contact.name || "") + " " + (doc.contact.phone_e164 || ""));
  });

  document.getElementById("erase").addEventListener("submit", async (event) => {
    event.preventDefault();
    const typed = document.getElementById("confirm").value.trim();
    if (!current || typed !== current) {
      say(L.mismatch, true);
      return;
    }
    const response = await fetch(base(current), { method: "DELETE", credentials: "same-origin" });
    if (!response.ok) {
      say(await detail(response), true);
      return;
    }
    const result = await response.json();
    const skip = new Set(["erased", "contact_id", "erasure_id", "resumed", "complete", "opt_out_kept"]);
    show(Object.entries(result).filter(([k]) => !skip.has(k)));
    held.querySelector("form").hidden = true;
    jsonLink.hidden = archiveLink.hidden = true;
    current = null;
    say(L.erased + " (" + result.erasure_id + ")");
  });
}());
