/*
 * Consent Ledger: what a provider's page says, turned into observations for the background
 * worker. One ChatWatcher per page, driven by one site adapter (adapters/<site>.js).
 *
 * Cost: a MutationObserver and three capture-phase listeners; no timer runs while idle (the
 * few one-shot timeouts below run only after a navigation or a send). Each mutation batch
 * looks only at the added nodes; deciding that a new user message is the newest one compares
 * it with the last known message (compareDocumentPosition), so a send costs the same in a
 * chat of 5 messages or 500.
 *
 * A send is a new user message at the end of the chat that follows the user's own intent
 * (Enter in the message box, or a click on the send button) within INTENT_MS. Messages the
 * site renders on its own (loading a chat, scrolling back, re-rendering) are not sends.
 */
(function (root) {
  'use strict';
  const CL = (root.ConsentLedger = root.ConsentLedger || {});

  const INTENT_MS = 20_000; // a send's message shows up within this time of Enter / the click
  const TEMP_ID_MS = 4_000; // an incognito send whose id never reaches the URL gets a temporary id
  const PENDING_MAX_MS = 60_000; // a normal send waits this long for its chat id, then says so
  const SETTLE_MS = 4_000; // after a navigation, when to check that the adapter finds the page
  const MENU_MS = 120_000; // a delete confirmation refers to the chat whose menu was opened
  const ACCOUNT_WAIT_MS = 5_000;
  const REREAD_MS = 1_500; // after a click on a settings toggle or a consent prompt
  const FOLLOWING = 4; // Node.DOCUMENT_POSITION_FOLLOWING
  const OVERLAY = '[role="menu"], [role="menuitem"], [role="dialog"], [role="alertdialog"], mat-dialog-container, .cdk-overlay-container';

  class ChatWatcher {
    /**
     * @param {object} o
     * @param {object} o.adapter   the site adapter
     * @param {Window} o.win       the page's window (location, timers)
     * @param {Document} o.doc
     * @param {(msg: object) => Promise<any>} o.send   runtime.sendMessage
     * @param {(path: string) => Promise<any>} [o.fetchJson]   same-origin GET for the account
     */
    constructor({ adapter, win, doc, send, fetchJson = null, now = () => Date.now(),
      uuid = () => root.crypto.randomUUID(), MutationObserverImpl = root.MutationObserver,
      PageBadgeImpl = CL.PageBadge }) {
      this.adapter = adapter;
      this.win = win;
      this.doc = doc;
      this.sendRaw = send;
      this.fetchJson = fetchJson;
      this.now = now;
      this.uuid = uuid;
      this.MO = MutationObserverImpl;
      this.badge = PageBadgeImpl ? new PageBadgeImpl(doc) : null;

      this.url = String(win.location.href);
      this.chatId = adapter.chatIdFromUrl(this.url);
      this.tempId = null;
      this.incognitoChats = new Set();
      this.known = new WeakSet();
      this.knownIds = new Set();
      this.lastKnown = null;
      this.intentAt = 0;
      this.pending = [];
      this.pendingTimer = null;
      this.menuChat = null;
      this.account = null;
      this.accountReady = Promise.resolve();
      this.problems = [];
      this.problemCheckAt = 0;
      this.settleTimer = null;
      this.rereadTimer = null;
      this.lastPageKey = '';
      this.lastTraining = null;
      this.incognitoSeen = false; // the page's own incognito marker, re-read after navigation and clicks
      this.incognitoStale = true;
      this.dead = false;

      this.onMutations = this.onMutations.bind(this);
      this.onClick = this.onClick.bind(this);
      this.onKeydown = this.onKeydown.bind(this);
      this.onPopState = () => this.checkLocation();
    }

    start() {
      for (const el of this.adapter.userMessages(this.doc)) this.remember(el);
      this.loadAccount();
      if (this.MO) {
        this.observer = new this.MO(this.onMutations);
        this.observer.observe(this.doc.documentElement, { childList: true, subtree: true });
      }
      this.doc.addEventListener('click', this.onClick, true);
      this.doc.addEventListener('keydown', this.onKeydown, true);
      this.win.addEventListener('popstate', this.onPopState);
      this.reportPage();
      this.scheduleSettle();
      return this;
    }

    stop() {
      this.dead = true;
      if (this.observer) this.observer.disconnect();
      this.doc.removeEventListener('click', this.onClick, true);
      this.doc.removeEventListener('keydown', this.onKeydown, true);
      this.win.removeEventListener('popstate', this.onPopState);
      this.win.clearTimeout(this.pendingTimer);
      this.win.clearTimeout(this.settleTimer);
      this.win.clearTimeout(this.rereadTimer);
    }

    // --- what the page shows ------------------------------------------------------------

    currentChatId() {
      return this.chatId || this.tempId;
    }

    currentIncognito() {
      if (this.incognitoStale) {
        this.incognitoSeen = this.adapter.incognito(this.url, this.doc);
        this.incognitoStale = false;
      }
      const id = this.currentChatId();
      return this.incognitoSeen || (id !== null && this.incognitoChats.has(id));
    }

    /** The page's address without query or fragment (claude's ?q= carries a prompt). */
    pageUrl() {
      const cut = this.url.search(/[?#]/);
      return cut === -1 ? this.url : this.url.slice(0, cut);
    }

    pageState() {
      const chatId = this.currentChatId();
      return {
        chat_id: chatId,
        incognito: this.currentIncognito(),
        title: chatId ? this.adapter.title(this.doc) : null,
        url: this.pageUrl(),
        problems: this.problems.slice(),
      };
    }

    reportPage() {
      const page = this.pageState();
      const key = JSON.stringify(page);
      if (key === this.lastPageKey) return;
      this.lastPageKey = key;
      this.emit({ type: 'cl/page', page }).then((answer) => {
        if (answer && answer.badge) this.showBadge(answer.badge, answer.hidden);
      });
    }

    /** The in-page badge belongs to a chat: pages without one (settings, a new chat) show none. */
    showBadge(badge, hidden) {
      if (this.badge) this.badge.render(this.adapter.titleAnchor(this.doc), badge, hidden || !this.currentChatId());
    }

    /** After a navigation settles: does the adapter still find what it needs on this page? */
    checkProblems() {
      const a = this.adapter;
      const problems = [];
      if (a.isChatPage(this.url)) {
        if (!a.hasComposer(this.doc)) problems.push('the message box was not found (the site may have changed)');
        if (this.chatId && a.userMessages(this.doc).length === 0) {
          problems.push('no messages were found in this chat (the site may have changed)');
        }
      }
      if (this.pending.length && !this.currentChatId() && this.now() - this.pending[0].at > PENDING_MAX_MS) {
        problems.push("a message was sent but the chat's id never appeared in the address");
      }
      this.problemCheckAt = this.now();
      this.incognitoStale = true;
      if (problems.join('|') !== this.problems.join('|')) {
        this.problems = problems;
        this.reportPage();
      }
    }

    scheduleSettle() {
      this.win.clearTimeout(this.settleTimer);
      this.settleTimer = this.win.setTimeout(() => this.checkProblems(), SETTLE_MS);
    }

    // --- navigation ---------------------------------------------------------------------

    checkLocation() {
      const href = String(this.win.location.href);
      if (href === this.url) return;
      const before = this.url;
      const oldId = this.chatId;
      this.url = href;
      this.incognitoStale = true;
      this.chatId = this.adapter.chatIdFromUrl(href);
      if (this.chatId !== oldId) {
        const newChatCreated = oldId === null && this.chatId !== null;
        if (!newChatCreated) {
          this.intentAt = 0;
          this.lastKnown = null;
          this.knownIds.clear();
        }
        this.tempId = null;
        if (this.chatId && this.pending.length) this.flushPending(this.chatId);
      }
      const a = this.adapter;
      if (a.isSettingsPage && a.isSettingsPage(before) && !a.isSettingsPage(href)) this.loadAccount();
      this.reportPage();
      this.scheduleSettle();
    }

    // --- mutations: sends, titles, settings ---------------------------------------------

    onMutations(records) {
      if (this.dead) return;
      if (String(this.win.location.href) !== this.url) this.checkLocation();
      let headChanged = false;
      for (const rec of records) {
        if (rec.target && this.doc.head && this.doc.head.contains(rec.target)) headChanged = true;
        for (const node of rec.addedNodes) {
          if (node.nodeType !== 1) continue;
          const found = this.adapter.userMessages(node);
          for (let i = 0; i < found.length; i++) this.consider(found[i]);
        }
      }
      if (headChanged && this.currentChatId()) this.reportPage();
      if (this.badge) this.badge.reattach(() => this.adapter.titleAnchor(this.doc));
      if (this.problems.length && this.now() - this.problemCheckAt > 1_000) this.checkProblems();
      if (this.adapter.isSettingsPage && this.adapter.isSettingsPage(this.url)) this.checkTrainingOnPage();
    }

    remember(el) {
      this.known.add(el);
      const id = this.adapter.messageId(el);
      if (id) this.knownIds.add(id);
      this.lastKnown = el;
    }

    /** A user message the site just added: a send, or history being rendered? */
    consider(el) {
      if (this.known.has(el)) return;
      this.known.add(el);
      const id = this.adapter.messageId(el);
      if (id) {
        if (this.knownIds.has(id)) return; // the same message, re-rendered
        this.knownIds.add(id);
      }
      const connected = this.lastKnown && this.lastKnown.isConnected;
      const armed = this.intentAt && this.now() - this.intentAt <= INTENT_MS;
      if (!armed) {
        // History being rendered: only keep track of the newest message, cheaply.
        if (!connected || (this.lastKnown.compareDocumentPosition(el) & FOLLOWING) !== 0) this.lastKnown = el;
        return;
      }
      let atEnd;
      if (connected) {
        atEnd = (this.lastKnown.compareDocumentPosition(el) & FOLLOWING) !== 0;
      } else {
        const all = this.adapter.userMessages(this.doc); // rare: the site re-rendered the whole chat
        atEnd = all[all.length - 1] === el;
      }
      if (!atEnd) return; // older messages loaded above the newest one
      this.lastKnown = el;
      this.intentAt = 0;
      this.recordSend();
    }

    recordSend() {
      const send = { at: this.now(), incognito: this.currentIncognito() };
      const chatId = this.currentChatId();
      if (chatId) {
        this.emitSent(chatId, send);
        return;
      }
      this.pending.push(send);
      if (!this.pendingTimer) {
        this.pendingTimer = this.win.setTimeout(() => this.pendingExpired(), send.incognito ? TEMP_ID_MS : PENDING_MAX_MS);
      }
    }

    pendingExpired() {
      this.pendingTimer = null;
      if (!this.pending.length) return;
      if (this.currentChatId()) {
        this.flushPending(this.currentChatId());
      } else if (this.pending.some((p) => p.incognito) || this.currentIncognito()) {
        // A temporary chat whose id never reaches the URL: a random id for this tab's chat.
        this.tempId = `temporary-${this.uuid()}`;
        this.flushPending(this.tempId);
        this.reportPage();
      } else {
        this.checkProblems();
        this.pending = [];
      }
    }

    flushPending(chatId) {
      const sends = this.pending;
      this.pending = [];
      this.win.clearTimeout(this.pendingTimer);
      this.pendingTimer = null;
      for (const s of sends) this.emitSent(chatId, s);
    }

    emitSent(chatId, { at, incognito }) {
      if (incognito) this.incognitoChats.add(chatId);
      this.emit({
        type: 'cl/sent',
        chat_id: chatId,
        at: new Date(at).toISOString(),
        incognito: incognito || this.incognitoChats.has(chatId),
        title: this.adapter.title(this.doc),
        url: this.pageUrl(),
      });
      this.reportPage();
    }

    checkTrainingOnPage() {
      const value = this.adapter.trainingFromPage(this.doc, this.url);
      if (value === null || value === this.lastTraining) return;
      this.lastTraining = value;
      this.emit({ type: 'cl/account', training: value, plan: null, source: 'settings_page' });
    }

    // --- user input ---------------------------------------------------------------------

    onKeydown(ev) {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && this.adapter.isComposer(ev.target)) {
        this.intentAt = this.now();
      }
    }

    onClick(ev) {
      const t = ev.target;
      if (!t || t.nodeType !== 1) return;
      const a = this.adapter;
      const sending = a.isSendButton(t);
      // A click may have switched temporary chat on or off, so the marker is read again at the
      // next send; not after a click in the message box or on send, which switch nothing: that
      // read is a whole-page query (~8 ms on a 500-message chat) and would land on every send.
      if (!sending && !a.isComposer(t)) this.incognitoStale = true;
      if (sending) this.intentAt = this.now();
      const rating = a.feedbackRating(t);
      if (rating && this.currentChatId()) {
        this.emit({ type: 'cl/feedback', chat_id: this.currentChatId(), rating, at: new Date(this.now()).toISOString() });
      }
      if (a.isDeleteConfirm(t)) {
        const fromMenu = this.menuChat && this.now() - this.menuChat.at <= MENU_MS ? this.menuChat.id : null;
        const chatId = fromMenu || this.currentChatId();
        this.menuChat = null;
        if (chatId) this.emit({ type: 'cl/deleted', chat_id: chatId, at: new Date(this.now()).toISOString() });
      } else if (!t.closest(OVERLAY)) {
        // Which chat a later delete confirmation refers to: a sidebar row's, or else the open one.
        this.menuChat = { id: a.chatIdNear(t), at: this.now() };
      }
      if (a.isSettingsPage && a.isSettingsPage(this.url)) {
        this.win.setTimeout(() => this.checkTrainingOnPage(), 300);
        if (a.account) this.rereadAccount('settings_page'); // a toggle on the settings page
      } else if (a.isConsentPrompt && a.isConsentPrompt(t)) {
        this.rereadAccount('choice_prompt'); // the site's own "may we train on your chats?" prompt
      }
    }

    /** Reads the account again shortly after a click that may have changed the setting. */
    rereadAccount(source) {
      this.win.clearTimeout(this.rereadTimer);
      this.rereadTimer = this.win.setTimeout(() => this.loadAccount(source), REREAD_MS);
    }

    // --- the account, and talking to the background -------------------------------------

    loadAccount(source = 'settings_page') {
      const spec = this.adapter.account;
      if (!spec || !this.fetchJson) return;
      const timeout = new Promise((resolve) => { this.win.setTimeout(resolve, ACCOUNT_WAIT_MS, null); });
      const lookup = this.fetchJson(spec.path).then((json) => spec.parse(json), () => null);
      this.accountReady = Promise.race([lookup, timeout]).then((acct) => {
        if (!acct) return;
        this.account = acct;
        this.sendNow({ type: 'cl/account', training: acct.training, plan: acct.plan, source });
      });
    }

    /** Sends after the account lookup settled, so every observation carries its account id. */
    emit(msg) {
      return this.accountReady.then(() => this.sendNow(msg));
    }

    sendNow(msg) {
      if (this.dead) return Promise.resolve(null);
      const full = { ...msg, provider: this.adapter.provider, account_id: this.account ? this.account.accountId : null };
      let sent;
      try {
        sent = Promise.resolve(this.sendRaw(full));
      } catch (err) {
        sent = Promise.reject(err);
      }
      return sent.catch((err) => {
        // The extension was reloaded or removed: this script is orphaned, so stop watching.
        if (/context invalidated|Receiving end does not exist/i.test(String(err && err.message))) this.stop();
        return null;
      });
    }
  }

  CL.ChatWatcher = ChatWatcher;
})(globalThis);
