// The Calls view: the last 500 calls made through Switchboard, by any client, newest first;
// filtered as typed (tool, client, outcome or correlation id).
import { call } from '../app.js';

const $ = (id) => document.getElementById(id);
const ms = (value) => (value < 1 ? `${Math.round(value * 1000)} µs` : `${value.toFixed(value < 10 ? 1 : 0)} ms`);

let calls = [];

export function init() {
  $('calls-filter').addEventListener('input', show);
}

/** Fetches the log again (after an overview: calls were made, or anything else changed). */
export async function render() {
  calls = await call('call_log');
  show();
}

function show() {
  const words = $('calls-filter').value.toLowerCase().split(/\s+/).filter(Boolean);
  const matching = calls.filter((c) => {
    const text = `${c.tool} ${c.client} ${c.outcome} ${c.correlation} ${c.error ?? ''}`.toLowerCase();
    return words.every((w) => text.includes(w));
  });
  const body = $('calls').tBodies[0];
  body.replaceChildren();
  for (const c of matching) {
    const row = body.insertRow();
    row.className = `outcome-${c.outcome}`;
    row.insertCell().textContent = new Date(c.at_ms).toLocaleTimeString();
    row.insertCell().textContent = c.client;
    row.insertCell().textContent = c.tool;
    const took = row.insertCell();
    took.textContent = ms(c.duration_ms);
    took.className = 'num';
    const outcome = row.insertCell();
    outcome.textContent = c.error ? `${c.outcome}: ${c.error}` : c.outcome;
    outcome.className = 'outcome';
    const id = row.insertCell();
    id.textContent = c.correlation;
    id.className = 'muted correlation';
  }
  $('calls-count').textContent = calls.length === 0
    ? 'No calls yet.'
    : `${matching.length} of the last ${calls.length} calls`;
}
