// The Connectors view: one row per connector, updated in place from each overview.
import { call } from '../app.js';

const $ = (id) => document.getElementById(id);
const ms = (value) => (value == null ? '—' : value < 1 ? `${Math.round(value * 1000)} µs` : `${value.toFixed(value < 10 ? 1 : 0)} ms`);

export function init({ openImport }) {
  $('first-run-import').addEventListener('click', openImport);
}

function cell(row, index, text, className) {
  const td = row.cells[index];
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function rowFor(tbody, id) {
  for (const row of tbody.rows) if (row.dataset.id === id) return row;
  const row = tbody.insertRow();
  row.dataset.id = id;
  for (let i = 0; i < 11; i++) row.insertCell();
  const toggle = document.createElement('input');
  toggle.type = 'checkbox';
  toggle.className = 'toggle';
  toggle.setAttribute('aria-label', `enable ${id}`);
  toggle.addEventListener('change', () => {
    toggle.disabled = true;
    call('set_enabled', { id, enabled: toggle.checked })
      .catch(() => { toggle.checked = !toggle.checked; })
      .finally(() => { toggle.disabled = false; });
  });
  row.cells[0].append(toggle);
  // The reason, and a Sign in button kept from render to render (a click must not land on
  // one replaced meanwhile).
  row.cells[10].className = 'error-cell';
  row.cells[10].append(signInButton(id), document.createElement('span'));
  return row;
}

export function render(overview) {
  const tbody = $('connectors').tBodies[0];
  const ids = new Set(overview.connectors.map((c) => c.id));
  for (const row of [...tbody.rows]) if (!ids.has(row.dataset.id)) row.remove();
  overview.connectors.forEach((c, index) => {
    const row = rowFor(tbody, c.id);
    if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] ?? null);
    row.className = c.state;
    const toggle = row.cells[0].firstChild;
    if (!toggle.disabled) toggle.checked = c.state !== 'disabled';
    // The manifest's display name where it gives one; the id stays in the tooltip.
    cell(row, 1, c.display_name ?? c.id, 'name').title = c.display_name
      ? `${c.id}, from the ${c.source}`
      : `from the ${c.source}`;
    cell(row, 2, c.transport);
    cell(row, 3, c.protocol_version ?? '—', 'protocol');
    const state = row.cells[4];
    state.replaceChildren();
    const badge = document.createElement('span');
    badge.className = 'state';
    const dot = document.createElement('span');
    dot.className = 'dot';
    badge.append(dot, c.state);
    state.append(badge);
    if (c.state === 'down' && c.retry_in_ms != null) {
      state.append(` · retry in ${Math.ceil(c.retry_in_ms / 1000)} s`);
    }
    cell(row, 5, ms(c.latency_ms), 'num');
    const calls = c.calls;
    cell(row, 6, calls ? `${ms(calls.p50_ms)} / ${ms(calls.p95_ms)} / ${ms(calls.p99_ms)}` : '—', 'num');
    cell(row, 7, calls ? `${calls.calls}${calls.errors ? ` (${calls.errors} failed)` : ''}` : '0', 'num');
    cell(row, 8, String(c.tools), 'num tools');
    // Whether its secrets are there; what they are never reaches the window.
    const credential = c.credential;
    cell(row, 9, credential == null ? '—' : credential.state === 'set' ? 'set' : `unset: ${credential.variable}`,
      'credential').title = credential == null ? 'needs no token' : '';
    const healthyOrOff = c.state === 'healthy' || c.state === 'disabled' || c.state === 'connecting';
    const [button, reason] = row.cells[10].children;
    // A step-up: a call needed access the sign-in did not grant.
    const wants = c.wants_scopes ?? [];
    reason.textContent = wants.length && c.state !== 'needs-sign-in'
      ? `A call needed more access (${wants.join(' ')}): sign in again to grant it.`
      : healthyOrOff ? '' : (c.reason ?? '');
    button.hidden = c.state !== 'needs-sign-in' && wants.length === 0;
    if (!button.disabled) button.textContent = c.state === 'needs-sign-in' ? 'Sign in' : 'Grant access';
  });
  $('connectors').hidden = overview.connectors.length === 0;
  $('connectors-empty').hidden = overview.connectors.length > 0 || overview.first_run;
  $('first-run').hidden = !overview.first_run;
  if (overview.first_run && !offered) offerImport();
}

function signInButton(id) {
  const button = document.createElement('button');
  button.className = 'sign-in';
  button.dataset.id = id;
  button.hidden = true;
  button.textContent = 'Sign in';
  button.addEventListener('click', () => signIn(button, id));
  return button;
}

/** Opens the sign-in page in the browser, then waits for the daemon to say how it ended. */
async function signIn(button, id) {
  button.textContent = 'Waiting for the browser…';
  button.disabled = true;
  try {
    await call('sign_in', { id, open_browser: true });
    await call('sign_in_wait', { id });
  } catch {
    // The banner says why.
  } finally {
    button.textContent = 'Sign in';
    button.disabled = false;
    // The next overview puts the right label back (`Grant access` for a step-up).
  }
}

let offered = false;

/** First run: say which client configs were found and how many servers they would add. */
async function offerImport() {
  offered = true;
  const list = $('first-run-found');
  list.replaceChildren();
  let items = [];
  try {
    items = await call('import_preview', { from: null }, { inline: true });
  } catch (error) {
    const li = document.createElement('li');
    li.textContent = error.code === 'nothing_to_import'
      ? 'No other MCP client config was found on this machine: add a server in Registry.'
      : (error.message ?? String(error));
    list.append(li);
    $('first-run-import').hidden = true;
    return;
  }
  const byOrigin = new Map();
  for (const item of items) {
    if (item.action === 'add') byOrigin.set(item.origin, (byOrigin.get(item.origin) ?? 0) + 1);
  }
  for (const [origin, count] of byOrigin) {
    const li = document.createElement('li');
    li.textContent = `${count} server${count === 1 ? '' : 's'} in ${origin}`;
    list.append(li);
  }
  $('first-run-import').hidden = byOrigin.size === 0;
}
