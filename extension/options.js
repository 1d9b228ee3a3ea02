/**
 * The options page: the server's address, pairing with a one-time code, and the in-page
 * badge setting. Pairing itself runs in the worker (cl/pair), which keeps the token.
 */

const api = globalThis.browser && globalThis.browser.runtime ? globalThis.browser : globalThis.chrome;
const $ = (id) => document.getElementById(id);

async function ask(msg) {
  try {
    return await api.runtime.sendMessage(msg);
  } catch (err) {
    return { ok: false, error: String(err && err.message) };
  }
}

async function load() {
  const state = await ask({ type: 'cl/state' });
  if (!state.ok) {
    $('paired-state').textContent = state.error;
    return;
  }
  $('server').value = state.server.url;
  $('paired-state').textContent = state.server.paired
    ? `Paired with ${state.server.url} since ${state.server.paired_at.slice(0, 10)}. Connection: ${state.link.state}${state.link.message ? ` (${state.link.message})` : ''}.`
    : 'Not paired yet: nothing is recorded until you pair.';
  $('unpair').hidden = !state.server.paired;
  $('hide-badge').checked = !!state.settings.hideInPageBadge;
}

$('pair-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('pair-result').className = '';
  $('pair-result').textContent = 'Pairing…';
  const answer = await ask({ type: 'cl/pair', server: $('server').value, code: $('code').value });
  $('pair-result').className = answer.ok ? '' : 'error';
  $('pair-result').textContent = answer.ok ? 'Paired. The server proved it holds its key.' : `Not paired: ${answer.error}`;
  if (answer.ok) $('code').value = '';
  load();
});

$('unpair').addEventListener('click', async () => {
  await ask({ type: 'cl/unpair' });
  $('pair-result').textContent = 'Unpaired.';
  load();
});

$('hide-badge').addEventListener('change', (ev) => ask({ type: 'cl/settings', hideInPageBadge: ev.target.checked }));

load();
