// WhatsApp formatting (*bold*, _italic_, ~strike~, ```mono```) shown as it will look.
// Built from DOM nodes with textContent only: the text never becomes markup.

const MARKS = [
  ["```", "code"], ["*", "strong"], ["_", "em"], ["~", "s"],
];

function findMark(text, from) {
  let best = null;
  for (const [mark, tag] of MARKS) {
    let i = text.indexOf(mark, from);
    while (i !== -1) {
      const startOk = i === 0 || /[\s([{"'¡¿.,:;!?-]/.test(text[i - 1]);
      const inner = i + mark.length;
      const close = text.indexOf(mark, inner + 1);
      if (startOk && close !== -1 && text[inner] && !/\s/.test(text[inner]) && !/\s/.test(text[close - 1])
          && (mark === "```" || text.slice(inner, close).indexOf("\n") === -1)) {
        const after = text[close + mark.length];
        if (after === undefined || /[\s)\]}"'.,:;!?-]/.test(after)) {
          if (!best || i < best.start) best = {start: i, end: close + mark.length, inner, close, tag, mark};
          break;
        }
      }
      i = text.indexOf(mark, i + 1);
    }
  }
  return best;
}

/** Append text to parent, with WhatsApp's formatting marks turned into elements. */
export function appendFormatted(parent, text) {
  let pos = 0;
  while (pos < text.length) {
    const m = findMark(text, pos);
    if (!m) break;
    if (m.start > pos) parent.append(document.createTextNode(text.slice(pos, m.start)));
    const node = document.createElement(m.tag);
    const inner = text.slice(m.inner, m.close);
    if (m.tag === "code") node.textContent = inner; else appendFormatted(node, inner);
    parent.append(node);
    pos = m.end;
  }
  if (pos < text.length) parent.append(document.createTextNode(text.slice(pos)));
  return parent;
}

export function formatted(text, tag = "span", cls = "") {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  return appendFormatted(node, text || "");
}
