// The Tools view: every live connector's tools with a switch each (what AI clients are served)
// and what each costs a model's context; per connector and in total.
import { call } from '../app.js';

const $ = (id) => document.getElementById(id);
const tokens = (n) => (n < 1000 ? `${n} tokens` : `${(n / 1000).toFixed(1)}k tokens`);

let shownKey = null;

/** Re-lists the tools when what is live, or what is switched off, may have changed. */
export async function render(overview, { force = false } = {}) {
  const key = JSON.stringify([overview.served, overview.connectors.map((c) => [c.id, c.state, c.tools])]);
  if (key === shownKey && !force) return;
  shownKey = key;
  const tools = await call('tools');
  const byConnector = new Map();
  for (const tool of tools) {
    if (!byConnector.has(tool.connector)) byConnector.set(tool.connector, []);
    byConnector.get(tool.connector).push(tool);
  }
  const served = tools.filter((t) => t.enabled);
  const cost = served.reduce((sum, t) => sum + t.context_tokens, 0);
  $('tools-summary').textContent = tools.length === 0
    ? 'No live tools: connectors list theirs once healthy.'
    : `Serving ${served.length} of ${tools.length} tools to AI clients, about ${tokens(cost)} of context.`;
  const list = $('tools-list');
  list.replaceChildren();
  for (const [connector, own] of byConnector) {
    const on = own.filter((t) => t.enabled);
    const section = document.createElement('section');
    section.className = 'card';
    section.dataset.connector = connector;
    const heading = document.createElement('h2');
    heading.textContent = `${connector} — ${on.length} of ${own.length} served, ` +
      `about ${tokens(on.reduce((sum, t) => sum + t.context_tokens, 0))}`;
    const table = document.createElement('table');
    const body = table.createTBody();
    for (const tool of own) {
      const row = body.insertRow();
      row.dataset.tool = tool.name;
      const toggle = document.createElement('input');
      toggle.type = 'checkbox';
      toggle.checked = tool.enabled;
      toggle.setAttribute('aria-label', `serve ${tool.name}`);
      toggle.addEventListener('change', () => {
        toggle.disabled = true;
        call('set_tool_enabled', { tool: tool.name, enabled: toggle.checked })
          .then(() => render(overview, { force: true }))
          .catch(() => { toggle.checked = !toggle.checked; toggle.disabled = false; });
      });
      row.insertCell().append(toggle);
      const name = row.insertCell();
      name.textContent = tool.tool;
      name.className = 'name';
      row.insertCell().textContent = tool.description ?? '';
      row.cells[2].className = 'muted';
      const cell = row.insertCell();
      cell.textContent = tokens(tool.context_tokens);
      cell.className = 'num';
    }
    section.append(heading, table);
    list.append(section);
  }
}
