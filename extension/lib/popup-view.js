/**
 * The popup as a small state machine: loading -> problem (unpaired, server unreachable or
 * untrusted) | unknown site | a provider page without a chat | a known chat. `popupView` is
 * pure: it turns the worker's `cl/state` answer into what the popup shows.
 */

import { day } from './badge.js';

const SETTING_NAME = { claude: 'Help improve Claude', chatgpt: 'Improve the model for everyone', gemini: 'Keep Activity' };
const LINK_TEXT = {
  ok: 'connected',
  unreachable: 'server not reachable',
  untrusted: 'server not trusted',
  refused: 'server refused us',
  unknown: 'not connected yet',
};

/**
 * @param {object|null} state  the worker's answer to cl/state (null while loading)
 * @param {{onProviderPage: boolean}} tabInfo  whether the active tab's URL is a provider's
 */
export function popupView(state, { onProviderPage }) {
  if (!state) return { screen: 'loading', link: '…' };
  if (!state.ok) return { screen: 'problem', problem: state.error || 'The extension could not answer.', link: '!' };
  const view = {
    link: state.server.paired ? LINK_TEXT[state.link.state] || state.link.state : 'not paired',
    queue: (state.outbox ? `${state.outbox} event${state.outbox === 1 ? '' : 's'} waiting to be sent` : 'nothing waiting')
      + (state.rejected ? `; ${state.rejected} refused by the server` : ''),
    dashboard: state.server.paired ? state.server.dashboard : null,
  };
  if (!state.server.paired) {
    return { ...view, screen: 'problem', problem: 'Not paired with the Consent Ledger server. Run `consent-ledger serve`, then paste its pairing code in the options.' };
  }
  if (['unreachable', 'untrusted', 'refused'].includes(state.link.state)) {
    view.problem = `${view.link[0].toUpperCase()}${view.link.slice(1)}: ${state.link.message}`;
  }
  if (!state.tab || !onProviderPage) {
    return { ...view, screen: view.problem ? 'problem' : 'unknown-site', reloadHint: onProviderPage };
  }
  const tab = state.tab;
  const acct = state.account || {};
  const training = acct.training;
  Object.assign(view, {
    settingName: SETTING_NAME[tab.provider] || 'Training setting',
    settingValue: training ? (training.value ? 'on' : 'off') : 'not recorded',
    settingSource: training ? `(${training.source === 'user_declared' ? 'declared by you' : 'read from the site'}, ${day(training.at)})` : '',
    privacyUrl: state.site && state.site.privacySettingsUrl,
    plans: state.plans || [],
    plan: acct.plan ? acct.plan.plan : '',
    planSource: acct.plan ? `(${acct.plan.source === 'user_declared' ? 'declared by you' : 'read from the site'})` : '',
    problems: tab.problems || [],
  });
  if (!tab.chat_id) return { ...view, screen: 'no-chat' };
  const badge = state.badge || { text: '?', color: '#6B7280', title: '' };
  const status = tab.status || {};
  return {
    ...view,
    screen: 'chat',
    letter: badge.text,
    color: badge.color,
    verdict: badge.title,
    title: tab.title || status.title || '(untitled chat)',
    incognito: !!tab.incognito,
    reasons: Array.isArray(status.reasons) ? status.reasons.filter((r) => typeof r === 'string') : [],
  };
}
