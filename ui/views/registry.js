// The Registry view: the servers in servers.json (add, edit, remove, with the engine's
// validation shown inline), import with a preview, and the manifest in use.
import { call } from '../app.js';

const $ = (id) => document.getElementById(id);
const form = () => $('server-form');
let editing = null; // {name, entry} being edited, or null when adding

const lines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);
function pairs(text) {
  const map = {};
  for (const line of lines(text)) {
    const at = line.indexOf('=');
    if (at > 0) map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    else map[line] = '';
  }
  return map;
}
const unpairs = (map) => Object.entries(map ?? {}).map(([k, v]) => `${k}=${v}`).join('\n');

export function init() {
  $('server-new').addEventListener('click', () => edit(null));
  $('server-cancel').addEventListener('click', () => { form().hidden = true; });
  for (const radio of form().elements.kind) radio.addEventListener('change', showKind);
  form().addEventListener('submit', (event) => { event.preventDefault(); save(); });
  $('import-preview').addEventListener('click', preview);
  $('import-apply').addEventListener('click', apply);
  $('manifest-form').addEventListener('submit', (event) => {
    event.preventDefault();
    setManifest($('manifest-source').value.trim() || null);
  });
  $('manifest-clear').addEventListener('click', () => setManifest(null));
}

async function setManifest(source) {
  const error = $('manifest-form').querySelector('.field-error');
  error.hidden = true;
  try {
    await call('set_manifest', { source }, { inline: true });
  } catch (e) {
    error.textContent = e.message ?? String(e);
    error.hidden = false;
  }
}

let shownSetting;

function kind() { return form().elements.kind.value; }

function showKind() {
  const stdio = kind() === 'stdio';
  form().querySelector('[data-kind=stdio]').hidden = !stdio;
  form().querySelector('[data-kind=remote]').hidden = stdio;
}

function clearErrors() {
  for (const p of form().querySelectorAll('.field-error')) { p.hidden = true; p.textContent = ''; }
}

function edit(server) {
  editing = server;
  const f = form().elements;
  const entry = server?.entry ?? {};
  $('server-form-title').textContent = server ? `Edit ${server.name}` : 'Add a server';
  f.name.value = server?.name ?? '';
  f.kind.value = entry.url ? (entry.type === 'sse' ? 'sse' : 'http') : 'stdio';
  f.command.value = entry.command ?? '';
  f.args.value = (entry.args ?? []).join('\n');
  f.env.value = unpairs(entry.env);
  f.url.value = entry.url ?? '';
  f.headers.value = unpairs(entry.headers);
  f.enabled.checked = entry.enabled !== false;
  clearErrors();
  showKind();
  form().hidden = false;
  f.name.focus();
}

/** The entry in the mcpServers shape: the original's other fields (tags, timeouts) kept. */
function entryFromForm() {
  const f = form().elements;
  const entry = { ...(editing?.entry ?? {}) };
  for (const key of ['command', 'args', 'env', 'cwd', 'url', 'type', 'headers']) delete entry[key];
  if (kind() === 'stdio') {
    entry.command = f.command.value.trim();
    entry.args = lines(f.args.value);
    entry.env = pairs(f.env.value);
  } else {
    entry.url = f.url.value.trim();
    entry.type = kind();
    entry.headers = pairs(f.headers.value);
  }
  entry.enabled = f.enabled.checked;
  return entry;
}

async function save() {
  clearErrors();
  const name = form().elements.name.value.trim();
  try {
    await call('save_server', { original: editing?.name ?? null, name, entry: entryFromForm() }, { inline: true });
    form().hidden = true;
    await load();
  } catch (error) {
    // Beside the field the engine names (name, command, env, url, headers), else under the form.
    const where = form().querySelector(`.field-error[data-for="${error.field}"]`)
      ?? form().querySelector('.field-error[data-for="entry"]');
    where.textContent = error.message ?? String(error);
    where.hidden = false;
  }
}

export async function load() {
  const servers = await call('registry_entries');
  const tbody = $('servers').tBodies[0];
  tbody.replaceChildren();
  for (const server of servers) {
    const row = tbody.insertRow();
    row.dataset.name = server.name;
    row.insertCell().textContent = server.name + (server.enabled ? '' : ' (off)');
    row.insertCell().textContent = server.transport;
    const e = server.entry;
    row.insertCell().textContent = e.url ?? [e.command, ...(e.args ?? [])].join(' ');
    const actions = row.insertCell();
    const editButton = document.createElement('button');
    editButton.textContent = 'Edit';
    editButton.addEventListener('click', () => edit(server));
    const remove = document.createElement('button');
    remove.textContent = 'Remove';
    remove.addEventListener('click', async () => {
      if (!window.confirm(`Remove ${server.name}?`)) return;
      await call('remove_server', { name: server.name });
      await load();
    });
    actions.append(editButton, ' ', remove);
  }
}

function importSource() {
  return $('import-path').value.trim() || $('import-from').value || null;
}

export async function preview() {
  $('import-result').textContent = '';
  let items;
  try {
    items = await call('import_preview', { from: importSource() }, { inline: true });
  } catch (error) {
    $('import-plan').hidden = true;
    $('import-apply').hidden = true;
    $('import-result').textContent = error.message ?? String(error);
    return;
  }
  const tbody = $('import-plan').tBodies[0];
  tbody.replaceChildren();
  const symbol = { add: '+ add', unchanged: '= unchanged', conflict: '! conflict', invalid: '× invalid' };
  for (const item of items) {
    const row = tbody.insertRow();
    row.className = `plan-${item.action}`;
    row.insertCell().textContent = symbol[item.action];
    row.insertCell().textContent = item.name;
    const detail = item.action === 'add'
      ? (item.detail.url ?? [item.detail.command, ...(item.detail.args ?? [])].join(' '))
      : (item.detail ?? '');
    const notes = [...item.secrets.map((s) => `secret in ${s}`), ...item.notes];
    row.insertCell().textContent = [detail, ...notes].filter(Boolean).join(' · ');
    row.insertCell().textContent = item.origin;
  }
  const adds = items.filter((i) => i.action === 'add').length;
  $('import-plan').hidden = items.length === 0;
  $('import-apply').hidden = adds === 0;
  $('import-apply').textContent = `Import ${adds} server${adds === 1 ? '' : 's'}`;
  if (items.length === 0) $('import-result').textContent = 'Nothing to import there.';
}

async function apply() {
  const added = await call('import_apply', { from: importSource() });
  $('import-apply').hidden = true;
  $('import-result').textContent = `Imported ${added} server${added === 1 ? '' : 's'}.`;
  await load();
}

export function showManifest(overview) {
  const m = overview.manifest;
  $('manifest-info').textContent = m
    ? `${m.connectors} connector(s) from the manifest${m.stale ? ` (stale: ${m.stale})` : ''}.`
    : 'No manifest in use.';
  // Fill the field from the setting when it changes, not while someone is typing.
  if (overview.manifest_setting !== shownSetting) {
    shownSetting = overview.manifest_setting;
    $('manifest-source').value = shownSetting ?? '';
  }
}
