// "Add to the knowledge base" on each of the signed-in agent's own replies: the reply and
// the customer's question before it become (part of) a knowledge suggestion for admins.
import {api, t, el, $, user, fmtNumber, showError} from "/static/js/core.js";

const sent = new Map();  // message id -> what the server said (the transcript re-renders often)

function doneText(count) {
  return count === 1 ? t("inbox.suggest_done_one") : t("inbox.suggest_done_many", {n: fmtNumber(count)});
}

async function suggest(conversationId, messageId, button) {
  button.disabled = true;
  showError(null, $("error"));
  try {
    const out = await api("POST", `/api/v1/conversations/${conversationId}/messages/${messageId}/suggestion`);
    sent.set(messageId, doneText(out.count));
    button.textContent = sent.get(messageId);
  } catch (err) {
    button.disabled = false;
    button.textContent = t("inbox.suggest_add");
    if (err.status !== 401) showError(err, $("error"));
  }
}

/** One button per reply of the signed-in user in the rendered transcript of ``d``. */
export function addSuggestButtons(d) {
  const conversationId = d && d.conversation && d.conversation.id;
  if (!user.id || !conversationId) return;
  for (const node of document.querySelectorAll('#messages [data-testid="message"]')) {
    if (node.dataset.authorId !== user.id || !node.dataset.id || node.querySelector(".kb-suggest")) continue;
    const done = sent.get(node.dataset.id);
    const button = el("button", done || t("inbox.suggest_add"), {
      type: "button", class: "kb-suggest", "data-testid": "suggest-reply", title: t("inbox.suggest_title"),
      disabled: Boolean(done),
    });
    button.addEventListener("click", () => suggest(conversationId, node.dataset.id, button));
    node.append(button);
  }
}
