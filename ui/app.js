// The window: subscribes to the engine's overview events and routes them to the views.
// Everything the page shows arrives through `invoke` and `listen`; text is always set as text.
import * as calls from './views/calls.js';
import * as clients from './views/clients.js';
import * as connectors from './views/connectors.js';
import * as latency from './views/latency.js';
import * as registry from './views/registry.js';
import * as tools from './views/tools.js';

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);

/** Calls a command; a failure is rethrown ({code, message, field}) and, unless the caller
 *  shows it inline, put in the error banner. */
export async function call(command, args = {}, { inline = false } = {}) {
  try {
    const answer = await invoke(command, args);
    $('command-error').hidden = true;
    return answer;
  } catch (error) {
    if (!inline) {
      $('command-error').textContent = error.message ?? String(error);
      $('command-error').hidden = false;
    }
    throw error;
  }
}

let latest = null;
let current = 'connectors';

function show(overview) {
  latest = overview;
  $('overall').className = `dot ${overview.overall}`;
  $('overall').title = `overall: ${overview.overall}`;
  $('summary').textContent = overview.summary;
  const stale = overview.manifest?.stale;
  $('stale-banner').hidden = !stale;
  $('stale-banner').textContent = stale ? `Manifest is stale, using the last good one: ${stale}` : '';
  $('registry-banner').hidden = !overview.registry_error;
  $('registry-banner').textContent = overview.registry_error
    ? `servers.json does not parse; edits are kept but it is not rewritten until fixed: ${overview.registry_error}`
    : '';
  connectors.render(overview);
  if (current === 'tools') tools.render(overview).catch(() => {});
  if (current === 'calls') calls.render().catch(() => {});
  if (current === 'latency') latency.render(overview);
  if (current === 'registry') registry.showManifest(overview);
}

function select(view) {
  current = view;
  for (const tab of document.querySelectorAll('nav [role=tab]')) {
    const on = tab.dataset.view === view;
    tab.setAttribute('aria-selected', String(on));
    $(`view-${tab.dataset.view}`).hidden = !on;
  }
  // The Clients and Calls views need no overview: shown even before the first one arrives.
  if (view === 'clients') clients.render().catch(() => {});
  if (view === 'calls') calls.render().catch(() => {});
  if (!latest) return;
  if (view === 'tools') tools.render(latest, { force: true }).catch(() => {});
  if (view === 'latency') latency.render(latest);
  if (view === 'registry') {
    registry.showManifest(latest);
    registry.load();
  }
}

window.addEventListener('DOMContentLoaded', async () => {
  for (const tab of document.querySelectorAll('nav [role=tab]')) {
    tab.addEventListener('click', () => select(tab.dataset.view));
  }
  $('sync-now').addEventListener('click', () => call('sync_now').catch(() => {}));
  connectors.init({ openImport: () => { select('registry'); registry.preview(); } });
  registry.init();
  latency.init();
  calls.init();
  clients.init();
  $('first-run-clients').addEventListener('click', (event) => { event.preventDefault(); select('clients'); });
  await listen('overview', (event) => show(event.payload));
  show(await call('overview'));
});
