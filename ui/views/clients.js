// The Clients view: each AI client's config on this machine, whether it routes through
// Switchboard, and installing (a preview first) or uninstalling Switchboard's one entry there;
// and the endpoint for clients that connect by URL.
import { call } from '../app.js';
import * as endpoint from './endpoint.js';

const $ = (id) => document.getElementById(id);
let previewed = null; // the client id whose preview is shown

export function init() {
  $('client-apply').addEventListener('click', () => install(previewed, true));
  $('client-cancel').addEventListener('click', () => { $('client-preview').hidden = true; previewed = null; });
  $('clients-take-over').addEventListener('change', () => { if (previewed) install(previewed, false); });
  $('autostart').addEventListener('change', switchAutostart);
  endpoint.init();
}

/** Turns start at login on or off, then shows what is true (a failure, inline). */
async function switchAutostart() {
  const on = $('autostart').checked;
  $('autostart-error').hidden = true;
  try {
    await call(on ? 'plugin:autostart|enable' : 'plugin:autostart|disable', {}, { inline: true });
  } catch (error) {
    $('autostart-error').textContent = `Start at login could not be switched ${on ? 'on' : 'off'}: ${error.message ?? error}`;
    $('autostart-error').hidden = false;
  }
  await showAutostart();
}

async function showAutostart() {
  try {
    $('autostart').checked = await call('plugin:autostart|is_enabled', {}, { inline: true });
  } catch (error) {
    $('autostart').disabled = true;
    $('autostart-error').textContent = `Start at login is not available here: ${error.message ?? error}`;
    $('autostart-error').hidden = false;
  }
}

export async function render() {
  await showAutostart();
  await endpoint.render();
  const body = $('clients').tBodies[0];
  body.replaceChildren();
  for (const c of await call('clients')) {
    const row = body.insertRow();
    row.dataset.client = c.client;
    row.insertCell().textContent = c.name;
    const path = row.insertCell();
    path.textContent = c.exists ? c.path : `${c.path} (none yet)`;
    path.className = 'muted path';
    row.insertCell().textContent = c.error ? `unreadable: ${c.error}` : c.routes ? 'yes' : 'no';
    row.insertCell().textContent = c.servers.length ? c.servers.join(', ') : '—';
    const action = document.createElement('button');
    action.type = 'button';
    if (c.routes) {
      action.textContent = 'Uninstall';
      action.addEventListener('click', () => uninstall(c.client));
    } else {
      action.textContent = 'Install…';
      action.disabled = !!c.error;
      action.addEventListener('click', () => install(c.client, false));
    }
    action.dataset.action = c.routes ? 'uninstall' : 'install';
    row.insertCell().append(action);
  }
}

/** Previews (or, with `apply`, does) pointing `client` at Switchboard. */
async function install(client, apply) {
  const takeOver = $('clients-take-over').checked;
  let report;
  try {
    report = await call('install_client', { client, take_over: takeOver, apply });
  } catch (error) {
    $('clients-result').textContent = error.message ?? String(error);
    return;
  }
  if (apply) {
    $('client-preview').hidden = true;
    previewed = null;
    $('clients-result').textContent = report.written
      ? `${report.name}: written to ${report.path}${report.backup ? `; the original is kept as ${report.backup}` : ''}. Restart ${report.name} to pick it up.`
      : `${report.name} already routes through Switchboard.`;
    await render();
    return;
  }
  previewed = client;
  $('client-preview-title').textContent = `${report.name}: ${report.path}`;
  const list = $('client-preview-changes');
  list.replaceChildren();
  const item = (text) => { const li = document.createElement('li'); li.textContent = text; list.append(li); };
  if (!report.changes) item('Already routes through Switchboard: nothing to change.');
  else item(`+ switchboard: ${report.entry}`);
  for (const name of report.switched_off) item(`− ${name}: switched off here (Switchboard serves it; uninstall puts it back)`);
  for (const name of report.duplicates) item(`${name}: Switchboard serves it too, so it would run twice`);
  if (report.backup) item(`The original is kept as ${report.backup}.`);
  $('client-apply').disabled = !report.changes;
  $('client-preview').hidden = false;
}

async function uninstall(client) {
  try {
    const report = await call('uninstall_client', { client });
    $('clients-result').textContent = report.outcome === 'restored'
      ? `${report.path} is back as it was.`
      : report.outcome === 'removed'
        ? `Removed Switchboard's entry from ${report.path}${report.restored_servers.length ? `; put back: ${report.restored_servers.join(', ')}` : ''}.`
        : `${report.path} does not route through Switchboard.`;
  } catch (error) {
    $('clients-result').textContent = error.message ?? String(error);
  }
  await render();
}
