// Inbox add-on: "add to the knowledge base" on each of the signed-in agent's own replies.
// The inbox page announces every rendered conversation with an "inbox:detail" event; this
// script adds one button per reply (data-author-id = the signed-in user).
"use strict";
(() => {
  const TEXT = {
    es: {add: "＋ Base de conocimiento", title: "Agregar esta respuesta (y la pregunta del cliente) a las sugerencias de la base de conocimiento",
         done: (n) => `Sugerido (${n === 1 ? "1 cliente" : n + " clientes"})`},
    en: {add: "＋ Knowledge base", title: "Add this reply (and the customer's question) to the knowledge-base suggestions",
         done: (n) => `Suggested (${n === 1 ? "1 customer" : n + " customers"})`},
  };
  const sent = new Map(); // message id -> what the server said (the page re-renders often)

  function text() { return TEXT[localStorage.getItem("atiende.lang") || "es"] || TEXT.es; }

  async function suggest(conversationId, messageId, button) {
    button.disabled = true;
    try {
      const res = await fetch(`/api/v1/conversations/${conversationId}/messages/${messageId}/suggestion`,
                              {method: "POST", credentials: "same-origin"});
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const detail = data && data.detail;
        throw new Error(typeof detail === "string" ? detail : Array.isArray(detail) && detail.length ? detail[0].msg : String(res.status));
      }
      sent.set(messageId, text().done(data.count));
      button.textContent = sent.get(messageId);
    } catch (e) {
      button.disabled = false;
      button.textContent = text().add;
      button.title = e.message;
      const error = document.getElementById("error");
      if (error) error.textContent = e.message;
    }
  }

  document.addEventListener("inbox:detail", (event) => {
    const me = document.body.dataset.userId;
    const conversationId = event.detail && event.detail.conversation && event.detail.conversation.id;
    if (!me || !conversationId) return;
    document.querySelectorAll('#messages [data-testid="message"]').forEach((node) => {
      if (node.dataset.authorId !== me || !node.dataset.id || node.querySelector(".kb-suggest")) return;
      const button = document.createElement("button");
      button.className = "kb-suggest"; button.type = "button";
      button.dataset.testid = "suggest-reply";
      button.style.cssText = "margin-left:.5rem;font-size:.75rem;padding:.1rem .4rem;";
      button.title = text().title;
      const done = sent.get(node.dataset.id);
      button.textContent = done || text().add;
      button.disabled = Boolean(done);
      button.addEventListener("click", () => suggest(conversationId, node.dataset.id, button));
      node.append(button);
    });
  });
})();
