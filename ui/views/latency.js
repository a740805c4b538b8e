// The Latency view: the engine's SVG histogram of each connector's calls, redrawn when its call
// count changes (and when the theme does).
import { call } from '../app.js';

const drawn = new Map(); // connector id -> "calls:theme" last drawn
let toolsKey = '';

/** Fills the tool list when the set of live tools may have changed. */
async function refreshTools(overview) {
  const key = overview.connectors.map((c) => `${c.id}:${c.state}:${c.tools}`).join(',');
  if (key === toolsKey) return;
  toolsKey = key;
  const select = document.getElementById('call-tool');
  const chosen = select.value;
  select.replaceChildren();
  for (const tool of await call('tools')) {
    const option = document.createElement('option');
    option.value = option.textContent = tool.name;
    if (tool.description) option.title = tool.description;
    select.append(option);
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

export function init() {
  const form = document.getElementById('call-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = form.querySelector('.field-error');
    const result = document.getElementById('call-result');
    error.hidden = true;
    result.textContent = '';
    let args;
    try {
      args = JSON.parse(document.getElementById('call-args').value || 'null');
    } catch (e) {
      error.textContent = `not JSON: ${e.message}`;
      error.hidden = false;
      return;
    }
    try {
      const answer = await call('call_tool', { tool: document.getElementById('call-tool').value, arguments: args }, { inline: true });
      result.textContent = JSON.stringify(answer, null, 2);
    } catch (e) {
      error.textContent = e.message ?? String(e);
      error.hidden = false;
    }
  });
}
const dark = window.matchMedia('(prefers-color-scheme: dark)');

export function render(overview) {
  refreshTools(overview).catch(() => { toolsKey = ''; });
  const charts = document.getElementById('charts');
  const ids = new Set(overview.connectors.map((c) => c.id));
  for (const figure of [...charts.children]) {
    if (!ids.has(figure.dataset.id)) { figure.remove(); drawn.delete(figure.dataset.id); }
  }
  for (const c of overview.connectors) {
    let figure = [...charts.children].find((f) => f.dataset.id === c.id);
    if (!figure) {
      figure = document.createElement('figure');
      figure.dataset.id = c.id;
      const img = document.createElement('img');
      img.alt = `call durations of ${c.id}`;
      const caption = document.createElement('figcaption');
      figure.append(img, caption);
      charts.append(figure);
    }
    const calls = c.calls?.calls ?? 0;
    figure.querySelector('figcaption').textContent = `${c.id}: ${calls} calls`;
    const key = `${calls}:${dark.matches}`;
    if (drawn.get(c.id) === key) continue;
    drawn.set(c.id, key);
    call('latency_svg', { id: c.id, dark: dark.matches }).then((svg) => {
      // An <img> never runs what an SVG holds.
      figure.querySelector('img').src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
      figure.dataset.calls = String(calls);
    }).catch(() => drawn.delete(c.id));
  }
}

dark.addEventListener('change', () => drawn.clear());
