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
  tools.clear();
  for (const tool of await call('tools')) {
    tools.set(tool.name, tool);
    const option = document.createElement('option');
    option.value = option.textContent = tool.name;
    if (tool.description) option.title = tool.description;
    select.append(option);
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  if (select.value !== chosen) showArguments();
}

const tools = new Map(); // qualified name -> the tool as `tools` lists it (with its schema)

/**
 * One field per property of the selected tool's input schema (required ones marked), each
 * writing into the JSON arguments, which stay the truth a call sends; a schema without
 * properties is shown as it is.
 */
function showArguments() {
  const tool = tools.get(document.getElementById('call-tool').value);
  const about = document.getElementById('call-about');
  const fields = document.getElementById('call-fields');
  fields.replaceChildren();
  about.textContent = tool?.description ?? '';
  const schema = tool?.input_schema ?? {};
  const properties = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  if (properties.length === 0) {
    const keys = Object.keys(schema).filter((k) => k !== 'type');
    const note = document.createElement('p');
    note.className = 'muted';
    note.textContent = keys.length === 0
      ? 'This tool takes no arguments.'
      : `Arguments as this schema describes them: ${JSON.stringify(schema)}`;
    fields.append(note);
    document.getElementById('call-args').value = '{}';
    return;
  }
  for (const [name, property] of properties) {
    const label = document.createElement('label');
    const type = Array.isArray(property.type) ? property.type[0] : property.type;
    label.append(`${name}${required.has(name) ? ' (required)' : ''}${type ? ` — ${type}` : ''} `);
    let input;
    if (type === 'boolean') {
      input = document.createElement('input');
      input.type = 'checkbox';
    } else if (type === 'object' || type === 'array') {
      input = document.createElement('textarea');
      input.rows = 2;
      input.placeholder = type === 'array' ? '[…] as JSON' : '{…} as JSON';
    } else {
      input = document.createElement('input');
      input.type = type === 'number' || type === 'integer' ? 'number' : 'text';
      if (Array.isArray(property.enum)) input.placeholder = property.enum.join(' | ');
    }
    input.name = name;
    input.dataset.type = type ?? '';
    if (property.description) label.title = input.title = property.description;
    input.addEventListener('input', writeArguments);
    label.append(input);
    fields.append(label);
  }
  writeArguments();
}

/** The arguments object the fields say, into the JSON text; an unparsable field is marked. */
function writeArguments() {
  const args = {};
  for (const input of document.querySelectorAll('#call-fields [name]')) {
    input.setCustomValidity('');
    const type = input.dataset.type;
    if (type === 'boolean') {
      if (input.checked) args[input.name] = true;
      continue;
    }
    if (input.value === '') continue;
    if (type === 'number' || type === 'integer') {
      args[input.name] = Number(input.value);
    } else if (type === 'object' || type === 'array') {
      try {
        args[input.name] = JSON.parse(input.value);
      } catch {
        input.setCustomValidity('not JSON');
      }
    } else {
      args[input.name] = input.value;
    }
  }
  document.getElementById('call-args').value = JSON.stringify(args);
}

export function init() {
  document.getElementById('call-tool').addEventListener('change', showArguments);
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
      const answer = await call('call_tool', { tool: document.getElementById('call-tool').value, arguments: args, client: 'Switchboard window' }, { inline: true });
      result.textContent = JSON.stringify(answer, null, 2);
    } catch (e) {
      error.textContent = e.message ?? String(e);
      error.hidden = false;
    }
  });
}
const dark = window.matchMedia('(prefers-color-scheme: dark)');

/** The chosen time window in seconds; `null` for every call since start. */
function windowSeconds() {
  const value = document.getElementById('latency-window').value;
  return value === '' ? null : Number(value);
}

let last = null;

export function render(overview) {
  last = overview;
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
    const within = windowSeconds();
    const key = `${calls}:${dark.matches}:${within}`;
    if (drawn.get(c.id) === key) continue;
    drawn.set(c.id, key);
    call('latency_svg', { id: c.id, dark: dark.matches, window_s: within }).then((svg) => {
      // An <img> never runs what an SVG holds.
      figure.querySelector('img').src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
      figure.dataset.calls = String(calls);
      figure.dataset.window = String(within ?? 'all');
    }).catch(() => drawn.delete(c.id));
  }
}

dark.addEventListener('change', () => drawn.clear());
document.getElementById('latency-window').addEventListener('change', () => {
  if (last) render(last);
});
// In a window, calls age out with no new overview to say so: draw again now and then.
setInterval(() => {
  if (windowSeconds() !== null && last && !document.getElementById('view-latency').hidden) {
    drawn.clear();
    render(last);
  }
}, 30000);
