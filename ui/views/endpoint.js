// The HTTP endpoint, in the Clients view: on or off, its port, whether the token is required,
// and where it serves now. The daemon applies a change at once and keeps it only once it serves.
import { call } from '../app.js';

const $ = (id) => document.getElementById(id);

export function init() {
  $('endpoint-form').addEventListener('submit', (event) => { event.preventDefault(); apply(); });
}

export async function render() {
  show(await call('endpoint'));
}

async function apply() {
  $('endpoint-error').hidden = true;
  const port = Number($('endpoint-port').value);
  try {
    show(await call('set_endpoint', {
      enabled: $('endpoint-enabled').checked,
      port,
      require_token: $('endpoint-token').checked,
    }, { inline: true }));
  } catch (error) {
    $('endpoint-error').textContent = error.message ?? String(error);
    $('endpoint-error').hidden = false;
  }
}

function show(status) {
  $('endpoint-enabled').checked = status.enabled;
  $('endpoint-port').value = status.port;
  $('endpoint-token').checked = status.requireToken;
  const lines = [];
  if (status.url) lines.push(`Serving at ${status.url}.`);
  else lines.push(status.enabled ? 'On, but not serving.' : 'Off.');
  if (status.tokenFile) lines.push(`The token is in ${status.tokenFile}.`);
  else if (status.url) lines.push('No token is required: any program on this machine can call every tool.');
  $('endpoint-state').textContent = lines.join(' ');
  if (status.problem) {
    $('endpoint-error').textContent = status.problem;
    $('endpoint-error').hidden = false;
  }
}
