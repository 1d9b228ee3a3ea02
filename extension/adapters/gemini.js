/*
 * Consent Ledger: everything the extension knows about gemini.google.com's pages
 * (EXPORTS.md 4.3). Every URL pattern and selector for the site is here. Gemini's "Keep
 * Activity" setting lives on myactivity.google.com, which the extension cannot read: the user
 * declares it in the popup. Accounts are always "default" (CONTRACT section 1).
 */
(function (root) {
  'use strict';
  const CL = root.ConsentLedger;
  const T = CL.pageTools;

  // /app/<hex id>, /u/<n>/app/<id> (signed in to several Google accounts), /gem/<gem>/<id>.
  const CHAT = /^(?:\/u\/\d+)?\/(?:app|gem\/[A-Za-z0-9_-]+)\/([0-9a-f]{8,64})(?:\/|$)/;
  const SEL = {
    userMessage: ['user-query'],
    composer: ['rich-textarea', '.ql-editor[contenteditable="true"]'],
    sendButton: ['button.send-button', 'button[aria-label="Send message" i]'],
    title: ['[data-test-id="conversation"].selected .conversation-title', '.conversation.selected .conversation-title', '[data-test-id="conversation-title"]'],
    titleAnchor: ['[data-test-id="conversation-title"]', 'top-bar-actions', 'chat-window'],
    feedbackUp: ['thumb-up-button button', 'button[aria-label="Good response" i]'],
    feedbackDown: ['thumb-down-button button', 'button[aria-label="Bad response" i]'],
    deleteConfirm: ['button[data-test-id="confirm-button"]'],
    dialog: '[role="dialog"], [role="alertdialog"], mat-dialog-container',
    temporaryOn: ['[data-test-id="temp-chat-button"][aria-pressed="true"]', 'button[aria-label="Temporary chat" i][aria-pressed="true"]', '.temp-chat-on'],
  };
  const DELETE_WORDS = /(delete|削除|löschen|supprimer|eliminar|excluir|elimina|удалить|删除|삭제)/i;

  const chatIdFromUrl = (url) => T.chatIdFromPath(url, 'gemini.google.com', CHAT);

  function isUserMessage(el) {
    return !!(el && el.matches && el.matches('user-query'));
  }

  function userMessages(scope) {
    const out = [];
    if (isUserMessage(scope)) out.push(scope);
    if (scope && scope.querySelectorAll) for (const el of scope.querySelectorAll('user-query')) out.push(el);
    return out;
  }

  function feedbackRating(target) {
    const up = T.closestAny(target, SEL.feedbackUp);
    const down = up ? null : T.closestAny(target, SEL.feedbackDown);
    const button = up || down;
    // The thumbs are toggles: a click on one already pressed takes the rating back.
    if (!button || button.getAttribute('aria-pressed') === 'true') return null;
    return up ? 'up' : 'down';
  }

  function isDeleteConfirm(target) {
    const button = T.closestAny(target, SEL.deleteConfirm);
    if (!button) return false;
    const dialog = button.closest(SEL.dialog);
    return !!dialog && DELETE_WORDS.test(T.textOf(dialog) || '');
  }

  const GeminiAdapter = {
    provider: 'gemini',
    name: 'Gemini',
    origin: 'https://gemini.google.com',
    hosts: ['gemini.google.com'],
    privacySettingsUrl: 'https://myactivity.google.com/product/gemini',
    selectors: SEL,
    chatIdFromUrl,
    isChatId: T.chatIdTest(/^[0-9a-f]{8,64}$/),
    incognito: (url, doc) => !!(doc && T.first(doc, SEL.temporaryOn)),
    title: (doc) => T.textOf(T.first(doc, SEL.title)) || T.titleFromDocument(doc, [' - Gemini', ' - Google Gemini'], ['Gemini', 'Google Gemini']),
    ...T.selectorMembers(SEL),
    isUserMessage,
    userMessages,
    messageId: () => null,
    feedbackRating,
    isDeleteConfirm,
    chatIdNear: (el) => T.chatIdNear(el, 'https://gemini.google.com', chatIdFromUrl, 3),
    account: null,
    trainingFromPage: () => null,
    isSettingsPage: () => false,
    isChatPage: (url) => {
      const u = T.toUrl(url);
      return !!u && (chatIdFromUrl(u) !== null || /^(?:\/u\/\d+)?\/(?:app|gem\/[A-Za-z0-9_-]+)\/?$/.test(u.pathname));
    },
  };
  CL.adapters.gemini = GeminiAdapter;
})(globalThis);
