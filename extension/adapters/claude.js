/*
 * Consent Ledger: everything the extension knows about claude.ai's pages (EXPORTS.md 4.1).
 * Every URL pattern and selector for the site is here; when claude.ai changes, this file
 * and its tests change, nothing else. Functions are pure: they read a URL, a document or an
 * element they are handed, and say "not found" (null / [] / a problem) rather than guess.
 */
(function (root) {
  'use strict';
  const CL = root.ConsentLedger;
  const T = CL.pageTools;

  const CHAT = new RegExp(`^/chat/(${T.UUID})(?:/|$)`);
  const SEL = {
    userMessage: ['[data-testid="user-message"]', '[data-user-message-bubble]', 'div.font-user-message'],
    composer: ['[data-testid="chat-input"]', 'div.ProseMirror[contenteditable="true"]', '[contenteditable="true"][role="textbox"]'],
    sendButton: ['button[aria-label="Send message" i]', 'button[aria-label="Send Message"]', 'button[data-testid="send-button"]'],
    title: ['button[data-testid="chat-title-button"]'],
    titleText: '.truncate',
    titleAnchor: ['button[data-testid="chat-title-button"]', '[data-testid="chat-menu-trigger"]', 'header[data-testid="page-header"]'],
    feedbackUp: ['button[aria-label="Give positive feedback"]', 'button[data-testid="thumbs-up"]'],
    feedbackDown: ['button[aria-label="Give negative feedback"]', 'button[data-testid="thumbs-down"]'],
    deleteConfirm: ['button[data-testid="delete-modal-confirm"]', '[role="dialog"] button', '[role="alertdialog"] button'],
    incognitoMarker: ['[data-testid="incognito-chat-label"]', '[aria-label="Incognito chat"]'],
  };
  const CONSENT_PROMPT = /help improve claude|model improvement|improve future models/i;
  const DELETE_WORDS = /^(delete|delete chat|削除|löschen|supprimer|eliminar|excluir|elimina|удалить|删除|삭제)$/i;

  const chatIdFromUrl = (url) => T.chatIdFromPath(url, 'claude.ai', CHAT);

  function isUserMessage(el) {
    return !!(el && el.matches && SEL.userMessage.some((s) => el.matches(s)));
  }

  function userMessages(scope) {
    const out = [];
    if (isUserMessage(scope)) out.push(scope);
    if (scope && scope.querySelectorAll) {
      for (const el of scope.querySelectorAll(SEL.userMessage.join(','))) out.push(el);
    }
    return out;
  }

  function feedbackRating(target) {
    if (T.closestAny(target, SEL.feedbackUp)) return 'up';
    if (T.closestAny(target, SEL.feedbackDown)) return 'down';
    return null;
  }

  function isDeleteConfirm(target) {
    const button = T.closestAny(target, SEL.deleteConfirm);
    if (!button) return false;
    if (button.matches('button[data-testid="delete-modal-confirm"]')) return true;
    return DELETE_WORDS.test(T.textOf(button) || '');
  }

  /** Which plan the account is on, from GET /api/account's memberships; null when unclear. */
  function planFromMemberships(memberships) {
    if (!Array.isArray(memberships)) return null;
    const plans = new Set();
    for (const m of memberships) {
      const org = (m && m.organization) || {};
      const caps = Array.isArray(org.capabilities) ? org.capabilities : [];
      if (!caps.includes('chat')) continue; // API-only organisations are not the chat account
      if (caps.includes('claude_max')) plans.add('max');
      else if (caps.includes('claude_pro')) plans.add('pro');
      else if (org.raven_type === 'team' || org.raven_type === 'enterprise') plans.add(org.raven_type);
      else if (caps.includes('raven')) plans.add('unknown');
      else plans.add('free');
    }
    return plans.size === 1 && !plans.has('unknown') ? [...plans][0] : null;
  }

  /**
   * GET https://claude.ai/api/account (same origin, the user's own session). Keeps exactly
   * three things: the account uuid, settings.grove_enabled (true/false; null = no choice
   * recorded yet, which produces no event) and the plan. E-mail, name and the rest are dropped
   * here and go nowhere.
   */
  function parseAccount(json) {
    const out = { accountId: null, training: null, plan: null };
    if (!json || typeof json !== 'object') return out;
    if (typeof json.uuid === 'string' && T.UUID_ONLY.test(json.uuid)) out.accountId = json.uuid;
    const grove = json.settings && json.settings.grove_enabled;
    if (grove === true || grove === false) out.training = grove;
    out.plan = planFromMemberships(json.memberships);
    return out;
  }

  const ClaudeAdapter = {
    provider: 'claude',
    name: 'Claude',
    origin: 'https://claude.ai',
    hosts: ['claude.ai'],
    privacySettingsUrl: 'https://claude.ai/settings/data-privacy-controls',
    selectors: SEL,
    chatIdFromUrl,
    isChatId: T.chatIdTest(T.UUID_ONLY),
    incognito: (url, doc) => T.queryFlag(url, 'incognito') || !!(doc && T.first(doc, SEL.incognitoMarker)),
    title: (doc) => {
      const button = T.first(doc, SEL.title);
      return T.textOf(button && (button.querySelector(SEL.titleText) || button)) || T.titleFromDocument(doc, [' - Claude', ' – Claude'], ['Claude', 'New chat']);
    },
    ...T.selectorMembers(SEL),
    isUserMessage,
    userMessages,
    messageId: () => null,
    feedbackRating,
    isDeleteConfirm,
    chatIdNear: (el) => T.chatIdNear(el, 'https://claude.ai', chatIdFromUrl, 3),
    account: { path: '/api/account', parse: parseAccount },
    trainingFromPage: () => null,
    /** A click inside claude's own training-choice dialog ("Help improve Claude"). */
    isConsentPrompt: (target) => {
      const dialog = target && target.closest && target.closest('[role="dialog"], [role="alertdialog"]');
      return !!dialog && !!target.closest('button') && CONSENT_PROMPT.test(T.textOf(dialog) || '');
    },
    isSettingsPage: (url) => /^\/settings(?:\/|$)/.test((T.toUrl(url) || {}).pathname || ''),
    isChatPage: (url) => chatIdFromUrl(url) !== null || /^\/new\/?$/.test((T.toUrl(url) || {}).pathname || ''),
  };
  CL.adapters.claude = ClaudeAdapter;
})(globalThis);
