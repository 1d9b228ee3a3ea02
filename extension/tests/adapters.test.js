import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ADAPTERS, adapterForUrl } from '../adapters/index.js';
import { fixture, page } from './helpers.js';

const { claude, chatgpt, gemini } = ADAPTERS;
const UUID = '0b6f3c1e-1111-4a2b-9c3d-123456789abc';

describe('adapter lookup', () => {
  it('maps only https pages of the three hosts', () => {
    assert.equal(adapterForUrl('https://claude.ai/chat/x').provider, 'claude');
    assert.equal(adapterForUrl('https://chatgpt.com/').provider, 'chatgpt');
    assert.equal(adapterForUrl('https://gemini.google.com/app').provider, 'gemini');
    for (const u of ['http://claude.ai/', 'https://evil.claude.ai/', 'https://claude.ai.evil.com/', 'https://claude.ai:8443/',
      'https://example.com/', 'chrome-extension://x/popup.html', 'nonsense']) assert.equal(adapterForUrl(u), null, u);
  });
});

describe('claude adapter', () => {
  it('parses chat ids from URLs, and only real chat URLs', () => {
    assert.equal(claude.chatIdFromUrl(`https://claude.ai/chat/${UUID}`), UUID);
    assert.equal(claude.chatIdFromUrl(`https://claude.ai/chat/${UUID}?foo=1#x`), UUID);
    for (const u of ['https://claude.ai/new', `https://claude.ai/project/${UUID}`, `https://claude.ai/share/${UUID}`,
      'https://claude.ai/chat/not-a-uuid', `https://chatgpt.com/chat/${UUID}`]) assert.equal(claude.chatIdFromUrl(u), null, u);
  });

  it('knows incognito from the URL, in all the spellings seen', () => {
    for (const u of ['https://claude.ai/new?incognito', 'https://claude.ai/new?incognito=1', 'https://claude.ai/new?incognito=true']) {
      assert.equal(claude.incognito(u, null), true, u);
    }
    assert.equal(claude.incognito('https://claude.ai/new?incognito=false', null), false);
    assert.equal(claude.incognito('https://claude.ai/new', null), false);
  });

  it('reads GET /api/account: uuid, grove_enabled, plan, and nothing personal', () => {
    const json = {
      uuid: '4f1c2d3e-0000-4000-8000-123456789abc', email_address: 'me@example.com', full_name: 'Me',
      settings: { grove_enabled: false, other: 1 },
      memberships: [{ organization: { uuid: 'o1', capabilities: ['chat', 'claude_pro'] }, seat_tier: null }],
    };
    const got = claude.account.parse(json);
    assert.deepEqual(got, { accountId: json.uuid, training: false, plan: 'pro' });
    assert.ok(!JSON.stringify(got).includes('example.com'));
    assert.equal(claude.account.parse({ ...json, settings: { grove_enabled: null } }).training, null); // no choice yet
    assert.equal(claude.account.parse({ ...json, settings: {} }).training, null);
    assert.equal(claude.account.parse({ ...json, settings: { grove_enabled: true } }).training, true);
    assert.equal(claude.account.parse({ memberships: [{ organization: { capabilities: ['chat', 'claude_max'] } }] }).plan, 'max');
    assert.equal(claude.account.parse({ memberships: [{ organization: { capabilities: ['chat'] } }] }).plan, 'free');
    assert.equal(claude.account.parse({ memberships: [{ organization: { capabilities: ['chat', 'raven'] } }] }).plan, null);
    assert.equal(claude.account.parse({ memberships: [{ organization: { capabilities: ['chat', 'claude_pro'] } },
      { organization: { capabilities: ['chat'] } }] }).plan, null); // two chat orgs disagree: say nothing
    assert.deepEqual(claude.account.parse('<html>'), { accountId: null, training: null, plan: null });
    assert.equal(claude.account.parse({ uuid: 'not-a-uuid' }).accountId, null);
  });

  it('reads the captured chat page: messages, title, composer, feedback', { skip: !fixture('claude-chat-simple.html') }, () => {
    const { document } = page(fixture('claude-chat-simple.html'), { title: 'Claude の HTML構造テスト - Claude' });
    const raw = fixture('claude-chat-simple.html');
    assert.equal(claude.userMessages(document).length, raw.split('data-testid="user-message"').length - 1);
    assert.ok(claude.userMessages(document).length >= 1);
    assert.equal(claude.title(document), 'Claude の HTML構造テスト');
    assert.ok(claude.hasComposer(document));
    assert.ok(claude.isComposer(document.querySelector('[data-testid="chat-input"]')));
    assert.ok(claude.titleAnchor(document));
    const up = document.querySelector('button[aria-label="Give positive feedback"]');
    const down = document.querySelector('button[aria-label="Give negative feedback"]');
    assert.equal(claude.feedbackRating(up.firstElementChild || up), 'up');
    assert.equal(claude.feedbackRating(down), 'down');
    assert.equal(claude.feedbackRating(document.querySelector('button[aria-label="Copy"]')), null);
  });

  it('falls back to document.title when the title button is gone (2026 redesign)', () => {
    const { document } = page('<div>no title button</div>', { title: 'Trip plans - Claude' });
    assert.equal(claude.title(document), 'Trip plans');
    assert.equal(claude.title(page('', { title: 'Claude' }).document), null);
  });

  it('says it finds nothing on the artifact panel capture (no composer, no user turns)', { skip: !fixture('claude-artifacts.html') }, () => {
    const { document } = page(fixture('claude-artifacts.html'));
    assert.equal(claude.userMessages(document).length, 0);
    assert.equal(claude.hasComposer(document), false);
  });

  it('recognises a delete confirmation and the chat of a sidebar row', () => {
    const { document } = page(`
      <nav><div class="row"><a href="/chat/${UUID}">Old chat</a><button id="more">…</button></div></nav>
      <div role="dialog"><h2>Delete chat?</h2><button id="cancel">Cancel</button><button id="ok">Delete</button></div>`);
    assert.equal(claude.isDeleteConfirm(document.getElementById('ok')), true);
    assert.equal(claude.isDeleteConfirm(document.getElementById('cancel')), false);
    assert.equal(claude.chatIdNear(document.getElementById('more')), UUID);
  });
});

describe('chatgpt adapter', () => {
  it('parses /c/<uuid> and GPT chats, never share links or provisional WEB: ids', () => {
    assert.equal(chatgpt.chatIdFromUrl(`https://chatgpt.com/c/${UUID}`), UUID);
    assert.equal(chatgpt.chatIdFromUrl(`https://chatgpt.com/g/g-abc123-my-gpt/c/${UUID}`), UUID);
    for (const u of ['https://chatgpt.com/', `https://chatgpt.com/share/${UUID}`, `https://chatgpt.com/c/WEB:${UUID}`, 'https://chatgpt.com/gpts']) {
      assert.equal(chatgpt.chatIdFromUrl(u), null, u);
    }
    assert.ok(chatgpt.isChatId(`temporary-${UUID}`));
    assert.ok(!chatgpt.isChatId('temporary-x'));
  });

  it('knows a temporary chat from the URL or the toggle', () => {
    assert.equal(chatgpt.incognito('https://chatgpt.com/?temporary-chat=true', null), true);
    assert.equal(chatgpt.incognito('https://chatgpt.com/?temporary-chat=false', null), false);
    const { document } = page('<button aria-label="Turn on temporary chat" aria-pressed="true"></button>');
    assert.equal(chatgpt.incognito('https://chatgpt.com/', document), true);
    assert.equal(chatgpt.incognito('https://chatgpt.com/', page('<button aria-label="Temporary chat" aria-pressed="false"></button>').document), false);
  });

  it('reads the session: the user id and plan only (the access token is dropped)', () => {
    const json = { user: { id: 'user-AbC123dEf456gHi', email: 'me@example.com', name: 'Me' }, account: { planType: 'plus' }, accessToken: 'eyJsecret' };
    const got = chatgpt.account.parse(json);
    assert.deepEqual(got, { accountId: 'user-AbC123dEf456gHi', training: null, plan: 'plus' });
    assert.ok(!JSON.stringify(got).includes('secret'));
    assert.deepEqual(chatgpt.account.parse({}), { accountId: null, training: null, plan: null });
    assert.equal(chatgpt.account.parse({ account: { planType: 'mystery' } }).plan, null);
  });

  it('reads "Improve the model for everyone" from the Data controls switch, or says it cannot', () => {
    const dialog = (state) => page(`<div role="dialog"><div class="row"><div>Improve the model for everyone</div>
      <button role="switch" aria-checked="${state}"></button></div><div><span>Other</span><button role="switch" aria-checked="true"></button></div></div>`).document;
    assert.equal(chatgpt.trainingFromPage(dialog('false')), false);
    assert.equal(chatgpt.trainingFromPage(dialog('true')), true);
    assert.equal(chatgpt.trainingFromPage(page('<button role="switch" aria-checked="true"></button><p>Dark mode</p>').document), null);
    assert.ok(chatgpt.isSettingsPage('https://chatgpt.com/#settings/DataControls'));
  });

  for (const [name, users] of [['chatgpt-chat-simple.html', null], ['chatgpt-chat-code.html', 1]]) {
    it(`reads the captured page ${name}`, { skip: !fixture(name) }, () => {
      const raw = fixture(name);
      const { document } = page(raw, { title: 'Prime numbers' });
      const found = chatgpt.userMessages(document);
      assert.equal(found.length, users ?? raw.split('data-message-author-role="user"').length - 1);
      assert.ok(found.length >= 1);
      assert.ok(chatgpt.messageId(found[0]));
      assert.equal(chatgpt.title(document), 'Prime numbers');
      const good = document.querySelector('[data-testid="good-response-turn-action-button"]');
      if (good) {
        assert.equal(chatgpt.feedbackRating(good), 'up');
        assert.equal(chatgpt.feedbackRating(document.querySelector('[data-testid="bad-response-turn-action-button"]')), 'down');
        assert.ok(chatgpt.hasComposer(document));
      }
    });
  }

  it('recognises the delete confirmation button', () => {
    const { document } = page('<div role="dialog"><button data-testid="delete-conversation-confirm-button">Delete</button><button>Cancel</button></div>');
    assert.ok(chatgpt.isDeleteConfirm(document.querySelector('[data-testid]')));
    assert.ok(!chatgpt.isDeleteConfirm(document.querySelectorAll('button')[1]));
  });
});

describe('gemini adapter', () => {
  it('parses /app/<id>, multi-account and Gem URLs', () => {
    assert.equal(gemini.chatIdFromUrl('https://gemini.google.com/app/805e7b06c9459c98'), '805e7b06c9459c98');
    assert.equal(gemini.chatIdFromUrl('https://gemini.google.com/u/1/app/805e7b06c9459c98'), '805e7b06c9459c98');
    assert.equal(gemini.chatIdFromUrl('https://gemini.google.com/gem/coding-partner/805e7b06c9459c98'), '805e7b06c9459c98');
    assert.equal(gemini.chatIdFromUrl('https://gemini.google.com/app'), null);
    assert.equal(gemini.account, null); // gemini's label is always "default"
  });

  it('reads the captured chat page (a Japanese UI): messages, composer, thumbs', { skip: !fixture('gemini-chat-simple.html') }, () => {
    const raw = fixture('gemini-chat-simple.html');
    const { document } = page(raw, { title: 'Gemini' });
    assert.equal(gemini.userMessages(document).length, raw.split('<user-query\n').length - 1 || raw.split('<user-query ').length - 1);
    assert.ok(gemini.userMessages(document).length >= 1);
    assert.ok(gemini.hasComposer(document));
    assert.equal(gemini.title(document), null); // "Gemini" alone is no title: not guessed
    const up = document.querySelector('thumb-up-button button');
    assert.equal(gemini.feedbackRating(up), 'up');
    assert.equal(gemini.feedbackRating(document.querySelector('thumb-down-button button')), 'down');
    up.setAttribute('aria-pressed', 'true');
    assert.equal(gemini.feedbackRating(up), null); // un-rating is not a rating
  });

  it('knows a temporary chat and a delete confirmation', () => {
    const { document } = page(`<button data-test-id="temp-chat-button" aria-pressed="true"></button>
      <mat-dialog-container><h2>Delete chat?</h2><button data-test-id="confirm-button">Delete</button></mat-dialog-container>`);
    assert.equal(gemini.incognito('https://gemini.google.com/app', document), true);
    assert.ok(gemini.isDeleteConfirm(document.querySelector('[data-test-id="confirm-button"]')));
    const other = page('<mat-dialog-container><h2>Rename</h2><button data-test-id="confirm-button">OK</button></mat-dialog-container>').document;
    assert.ok(!gemini.isDeleteConfirm(other.querySelector('button')));
  });
});
