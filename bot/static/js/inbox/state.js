// The inbox page's one state object and a tiny event hub between its modules.

export const state = {
  current: null,        // the open conversation's id
  detail: null,         // its GET /conversations/{id}
  items: [],            // the list rows loaded so far
  cursor: null,         // the next page's cursor (X-Next-Cursor)
  tab: "queued",
  query: "",
  filters: {label: "", agent_id: "", team_id: "", channel: "", account: ""},
  agents: [], teams: [], canned: [], labels: [],
};

const handlers = {};
export function on(name, fn) { (handlers[name] = handlers[name] || []).push(fn); }
export function emit(name, ...args) { for (const fn of handlers[name] || []) fn(...args); }

/** The label's colour from the palette (or a neutral grey). */
export function labelColor(name) {
  const found = state.labels.find((l) => l.name === name);
  return found ? found.color : "#57606a";
}
