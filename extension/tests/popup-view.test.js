import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { popupView } from '../lib/popup-view.js';

const base = {
  ok: true,
  server: { url: 'http://127.0.0.1:8765', paired: true, dashboard: 'http://127.0.0.1:8765/' },
  link: { state: 'ok', message: '' },
  outbox: 0,
  site: { provider: 'claude', name: 'Claude', privacySettingsUrl: 'https://claude.ai/settings/data-privacy-controls' },
  plans: ['free', 'pro', 'max'],
};
const chatTab = { provider: 'claude', chat_id: 'c1', title: 'Trip', incognito: false, problems: [], account: 'abc',
  status: { training: 'no', reasons: ['R1: setting off since 2025-10-02'] } };

describe('popup states', () => {
  it('loading, then the error states: no answer, unpaired, unreachable', () => {
    assert.equal(popupView(null, { onProviderPage: true }).screen, 'loading');
    assert.equal(popupView({ ok: false, error: 'x' }, { onProviderPage: true }).screen, 'problem');
    const unpaired = popupView({ ...base, server: { paired: false, url: 'http://127.0.0.1:8765' } }, { onProviderPage: true });
    assert.equal(unpaired.screen, 'problem');
    assert.match(unpaired.problem, /Not paired/);
    const down = popupView({ ...base, link: { state: 'unreachable', message: 'server not reachable at http://127.0.0.1:8765' } }, { onProviderPage: false });
    assert.equal(down.screen, 'problem');
    assert.match(down.problem, /not reachable/);
  });

  it('unknown site, with a reload hint when the page is a provider but never reported', () => {
    assert.equal(popupView({ ...base, tab: null }, { onProviderPage: false }).screen, 'unknown-site');
    assert.equal(popupView({ ...base, tab: null }, { onProviderPage: true }).reloadHint, true);
  });

  it('a known chat: verdict, reasons, the recorded setting and plan', () => {
    const v = popupView({ ...base, tab: chatTab, badge: { text: '-', color: '#15803D', title: 'Not used for training; kept until you delete it' },
      account: { training: { value: false, source: 'settings_page', at: '2025-10-02T09:30:00.000Z' }, plan: { plan: 'pro', source: 'site' } } },
    { onProviderPage: true });
    assert.equal(v.screen, 'chat');
    assert.deepEqual([v.letter, v.color, v.verdict], ['-', '#15803D', 'Not used for training; kept until you delete it']);
    assert.deepEqual(v.reasons, ['R1: setting off since 2025-10-02']);
    assert.equal(v.settingName, 'Help improve Claude');
    assert.equal(v.settingValue, 'off');
    assert.match(v.settingSource, /read from the site, 2025-10-02/);
    assert.equal(v.plan, 'pro');
    assert.equal(v.dashboard, 'http://127.0.0.1:8765/');
  });

  it('a provider page without a chat; gemini asks about Keep Activity', () => {
    const v = popupView({ ...base, tab: { ...chatTab, provider: 'gemini', chat_id: null } }, { onProviderPage: true });
    assert.equal(v.screen, 'no-chat');
    assert.equal(v.settingName, 'Keep Activity');
    assert.equal(v.settingValue, 'not recorded');
  });
});
