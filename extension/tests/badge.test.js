import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BADGES, BLANK, badgeForTab, badgeFromStatus, badgeTitle } from '../lib/badge.js';

const link = { paired: true, state: 'ok' };
const tab = (extra = {}) => ({ provider: 'claude', chat_id: 'c1', problems: [], ...extra });

describe('badge (CONTRACT section 4)', () => {
  it('has exactly the table colours', () => {
    assert.deepEqual(Object.fromEntries(Object.entries(BADGES).map(([k, v]) => [k, [v.text, v.color]])), {
      yes: ['T', '#B45309'], was: ['W', '#7C3AED'], no: ['-', '#15803D'], unknown: ['?', '#6B7280'], error: ['!', '#B91C1C'],
    });
  });

  it('writes the titles of the table, dates as YYYY-MM-DD', () => {
    assert.equal(badgeTitle({ training: 'yes', training_windows: [{ from: '2025-10-02T09:30:00Z', until: null }], expires_at: '2030-10-02T09:30:00Z' }),
      'May be used for training since 2025-10-02; kept until 2030-10-02');
    assert.equal(badgeTitle({ training: 'was', training_windows: [{ from: '2025-01-01T00:00:00Z', until: '2025-03-01T00:00:00Z' }], expires_at: null }),
      'Was usable for training from 2025-01-01 to 2025-03-01; kept until you delete it');
    assert.equal(badgeTitle({ training: 'no', expires_at: null }), 'Not used for training; kept until you delete it');
    assert.equal(badgeTitle({ training: 'unknown' }), "Training setting not recorded; open the provider's privacy settings once");
  });

  it("uses the server's badge when it is a row of the table, else rebuilds it", () => {
    const given = { text: 'T', color: '#b45309', title: 'May be used for training since 2025-10-02; kept until 2030-10-02' };
    assert.deepEqual(badgeFromStatus({ training: 'yes', badge: given }), { text: 'T', color: '#B45309', title: given.title });
    const forged = badgeFromStatus({ training: 'no', badge: { text: 'T', color: '#B45309', title: 'lies' } });
    assert.equal(forged.text, '-');
    assert.equal(forged.title, 'Not used for training; kept until you delete it');
    assert.equal(badgeFromStatus({ training: 'weird' }).text, '?');
    assert.equal(badgeFromStatus(null).text, '?'); // 404: never seen
  });

  it('per tab: blank off the providers, ! when unpaired or unreachable, ? when the page is unreadable', () => {
    assert.deepEqual(badgeForTab(undefined, link), BLANK);
    assert.equal(badgeForTab(tab(), { paired: false }).text, '!');
    assert.match(badgeForTab(tab(), { paired: false }).title, /not paired/);
    assert.equal(badgeForTab(tab(), { paired: true, state: 'unreachable' }).text, '!');
    assert.equal(badgeForTab(tab(), { paired: true, state: 'unreachable' }).color, '#B91C1C');
    assert.match(badgeForTab(tab(), { paired: true, state: 'untrusted' }).title, /not reachable/);
    const unreadable = badgeForTab(tab({ problems: ['the message box was not found'] }), link);
    assert.deepEqual([unreadable.text, unreadable.color], ['?', '#6B7280']);
    assert.match(unreadable.title, /message box/);
    assert.deepEqual(badgeForTab(tab({ chat_id: null }), link), BLANK);
    assert.equal(badgeForTab(tab(), link).text, '?'); // not asked yet: no guess
    assert.equal(badgeForTab(tab({ status: { training: 'no' } }), link).text, '-');
  });
});
