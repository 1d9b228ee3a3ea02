/**
 * The toolbar popup: asks the worker for the active tab's state, shows it, then asks again
 * after a refresh from the server. Everything is written with textContent.
 */

import { adapterForUrl } from './adapters/index.js';
import { popupView } from './lib/popup-view.js';

const api = globalThis.browser && globalThis.browser.runtime ? globalThis.browser : globalThis.chrome;
const $ = (id) => document.getElementById(id);
const SCREENS = ['loading', 'problem', 'unknown-site', 'chat', 'no-chat'];
let tabId = null;
let onProviderPage = false;

function fillList(ul, items) {
  ul.replaceChildren(...items.map((text) => {
    const li = document.createElement('li');
    li.textContent = text;
    return li;
  }));
}

function render(state) {
  const v = popupView(state, { onProviderPage });
  for (const s of SCREENS) $(s).hidden = s !== v.screen;
  $('link').textContent = v.link;
  $('queue').textContent = v.queue || '';
  if (v.dashboard) {
    $('dashboard').href = v.dashboard;
    $('dashboard').hidden = false;
  }
  if (v.screen === 'problem') $('problem-text').textContent = v.problem;
  $('link-problem').hidden = !(v.problem && v.screen !== 'problem');
  $('link-problem').textContent = v.problem || '';
  if (v.screen === 'unknown-site') $('reload-hint').hidden = !v.reloadHint;
  const showAccount = v.screen === 'chat' || v.screen === 'no-chat';
  $('account').hidden = !showAccount;
  if (showAccount) {
    $('setting-name').textContent = v.settingName;
    $('setting-value').textContent = v.settingValue;
    $('setting-source').textContent = v.settingSource;
    if (v.privacyUrl) $('privacy-link').href = v.privacyUrl;
    const select = $('plan');
    select.replaceChildren(new Option('not known', ''), ...v.plans.map((p) => new Option(p, p)));
    select.value = v.plan;
    $('plan-source').textContent = v.planSource;
  }
  if (v.screen === 'chat') {
    $('letter').textContent = v.letter;
    $('letter').style.background = v.color;
    $('verdict').textContent = v.verdict;
    $('chat-title').textContent = v.title;
    $('incognito').hidden = !v.incognito;
    fillList($('reasons'), v.reasons);
    fillList($('page-problems'), v.problems.map((p) => `Cannot read this page: ${p}`));
  }
  if (v.screen === 'no-chat') fillList($('no-chat-problems'), v.problems.map((p) => `Cannot read this page: ${p}`));
}

async function ask(msg) {
  try {
    return await api.runtime.sendMessage(msg);
  } catch (err) {
    return { ok: false, error: String(err && err.message) };
  }
}

async function declare(fields) {
  const answer = await ask({ type: 'cl/declare', tabId, ...fields });
  $('notice').textContent = answer.ok ? 'Recorded.' : answer.error;
  render(answer.ok ? answer : await ask({ type: 'cl/state', tabId }));
}

async function main() {
  render(null);
  // popup.html?tab=<id> shows that tab: for the popup opened as a page (browser tests, where
  // a real action popup cannot be inspected); the toolbar popup shows the active tab.
  const forced = Number.parseInt(new URLSearchParams(globalThis.location.search).get('tab') || '', 10);
  const [tab] = Number.isInteger(forced) ? [await api.tabs.get(forced).catch(() => null)]
    : await api.tabs.query({ active: true, currentWindow: true });
  tabId = tab ? tab.id : null;
  // Without the "tabs" permission, tab.url is there only on the hosts we have access to.
  onProviderPage = !!(tab && tab.url && adapterForUrl(tab.url));
  render(await ask({ type: 'cl/state', tabId }));
  render(await ask({ type: 'cl/refresh', tabId }));
}

$('open-options').addEventListener('click', () => api.runtime.openOptionsPage());
$('declare-on').addEventListener('click', () => declare({ what: 'consent', value: true }));
$('declare-off').addEventListener('click', () => declare({ what: 'consent', value: false }));
$('plan').addEventListener('change', (ev) => { if (ev.target.value) declare({ what: 'plan', plan: ev.target.value }); });
// Two steps instead of confirm(), which Firefox's popups do not support.
$('declare-deleted').addEventListener('click', (ev) => {
  const button = ev.currentTarget;
  if (button.dataset.armed !== 'yes') {
    button.dataset.armed = 'yes';
    button.textContent = 'Click again: record that I deleted it';
    return;
  }
  button.dataset.armed = '';
  button.textContent = 'I deleted this chat';
  declare({ what: 'deletion' });
});

main();
