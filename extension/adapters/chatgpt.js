/*
 * Consent Ledger: everything the extension knows about chatgpt.com's pages (EXPORTS.md 4.2).
 * Every URL pattern and selector for the site is here. Pure functions; "not found" is said
 * (null / [] / a problem), never guessed.
 */
(function (root) {
  'use strict';
  const CL = root.ConsentLedger;
  const T = CL.pageTools;

  // /c/<uuid> and /g/g-<id>-<slug>/c/<uuid>. Not /share/ (someone else's chat) and not the
  // provisional /c/WEB:<uuid> a new chat shows before it has an id.
  const CHAT = new RegExp(`^/(?:g/[A-Za-z0-9-]+/)?c/(${T.UUID})(?:/|$)`);
  const SEL = {
    userMessage: ['[data-message-author-role="user"]'],
    composer: ['#prompt-textarea', 'textarea[name="prompt-textarea"]', '[contenteditable="true"].ProseMirror'],
    sendButton: ['button[data-testid="send-button"]', 'button#composer-submit-button', 'button[aria-label="Send prompt" i]'],
    activeChatLink: ['nav a[aria-current="page"]', 'nav a[data-active]'],
    titleAnchor: ['#page-header [data-testid="conversation-options-button"]', '#page-header [data-testid="model-switcher-dropdown-button"]', '#page-header'],
    feedbackUp: ['button[data-testid="good-response-turn-action-button"]'],
    feedbackDown: ['button[data-testid="bad-response-turn-action-button"]'],
    deleteConfirm: ['button[data-testid="delete-conversation-confirm-button"]', '[role="dialog"] button', '[role="alertdialog"] button'],
    temporaryOn: ['button[aria-label*="temporary" i][aria-pressed="true"]', '[aria-label*="temporary" i][aria-checked="true"]', '[data-testid="temporary-chat-label"]'],
    switches: '[role="switch"], button[aria-checked], input[type="checkbox"]',
  };
  const DELETE_WORDS = /^(delete|削除|löschen|supprimer|eliminar|excluir|elimina|удалить|删除|삭제)$/i;
  const IMPROVE = /^improve the model for everyone$/i;
  const PLANS = { free: 'free', plus: 'plus', pro: 'pro', team: 'team', business: 'business', enterprise: 'enterprise', edu: 'education', education: 'education' };

  const chatIdFromUrl = (url) => T.chatIdFromPath(url, 'chatgpt.com', CHAT);

  function isUserMessage(el) {
    return !!(el && el.matches && el.matches(SEL.userMessage[0]));
  }

  function userMessages(scope) {
    const out = [];
    if (isUserMessage(scope)) out.push(scope);
    if (scope && scope.querySelectorAll) for (const el of scope.querySelectorAll(SEL.userMessage[0])) out.push(el);
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
    if (button.matches(SEL.deleteConfirm[0])) return true;
    return DELETE_WORDS.test(T.textOf(button) || '');
  }

  function title(doc) {
    return T.textOf(T.first(doc, SEL.activeChatLink)) || T.titleFromDocument(doc, [' - ChatGPT', ' | ChatGPT'], ['ChatGPT', 'New chat']);
  }

  /**
   * "Improve the model for everyone" (Settings > Data controls), read from the switch next to
   * that label when the settings dialog is open: true/false, or null when it is not on screen.
   */
  function trainingFromPage(doc) {
    for (const sw of doc.querySelectorAll(SEL.switches)) {
      let row = sw.parentElement;
      for (let i = 0; row && i < 4; i++, row = row.parentElement) {
        const labelled = [...row.querySelectorAll('div, span, label, p')].some((el) => IMPROVE.test(T.textOf(el) || ''));
        if (!labelled) continue;
        const checked = sw.getAttribute('aria-checked') || (sw.getAttribute('data-state') === 'checked' ? 'true'
          : sw.getAttribute('data-state') === 'unchecked' ? 'false' : null);
        if (checked === 'true') return true;
        if (checked === 'false') return false;
        if (sw.matches('input[type="checkbox"]')) return !!sw.checked;
        return null;
      }
    }
    return null;
  }

  /**
   * GET https://chatgpt.com/api/auth/session (same origin, the user's own session). Keeps only
   * the user id ("user-...") and the plan; the e-mail, name and the access token in that
   * answer are dropped here, never stored or passed on.
   */
  function parseAccount(json) {
    const out = { accountId: null, training: null, plan: null };
    if (!json || typeof json !== 'object') return out;
    const id = json.user && json.user.id;
    if (typeof id === 'string' && /^user-[A-Za-z0-9]{8,64}$/.test(id)) out.accountId = id;
    const plan = json.account && typeof json.account.planType === 'string' ? PLANS[json.account.planType.toLowerCase()] : undefined;
    out.plan = plan || null;
    return out;
  }

  const ChatGPTAdapter = {
    provider: 'chatgpt',
    name: 'ChatGPT',
    origin: 'https://chatgpt.com',
    hosts: ['chatgpt.com'],
    privacySettingsUrl: 'https://chatgpt.com/#settings/DataControls',
    selectors: SEL,
    chatIdFromUrl,
    isChatId: T.chatIdTest(T.UUID_ONLY),
    incognito: (url, doc) => T.queryFlag(url, 'temporary-chat') || !!(doc && T.first(doc, SEL.temporaryOn)),
    title,
    ...T.selectorMembers(SEL),
    isUserMessage,
    userMessages,
    messageId: (el) => (el && el.getAttribute && el.getAttribute('data-message-id')) || null,
    feedbackRating,
    isDeleteConfirm,
    chatIdNear: (el) => T.chatIdNear(el, 'https://chatgpt.com', chatIdFromUrl, 3),
    account: { path: '/api/auth/session', parse: parseAccount },
    trainingFromPage,
    isSettingsPage: (url) => {
      const u = T.toUrl(url);
      return !!u && (/^#settings/i.test(u.hash) || /^\/settings/.test(u.pathname));
    },
    isChatPage: (url) => {
      const u = T.toUrl(url);
      return !!u && (chatIdFromUrl(u) !== null || u.pathname === '/' || /^\/g\/[A-Za-z0-9-]+\/?$/.test(u.pathname));
    },
  };
  CL.adapters.chatgpt = ChatGPTAdapter;
})(globalThis);
