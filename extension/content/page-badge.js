/*
 * Consent Ledger: the in-page badge near the chat title (CONTRACT.md section 4's sentence).
 * Text goes in with textContent only, never as HTML; the badge lives in a closed shadow root
 * so the page's styles cannot restyle it and the page's scripts cannot read into it. Styles
 * are set through the CSSOM, which a page's Content-Security-Policy does not block.
 */
(function (root) {
  'use strict';
  const CL = (root.ConsentLedger = root.ConsentLedger || {});
  const HOST_ATTR = 'data-consent-ledger-badge';

  class PageBadge {
    constructor(doc) {
      this.doc = doc;
      this.host = null;
      this.pill = null;
      this.last = null;
    }

    build() {
      const host = this.doc.createElement('span');
      host.setAttribute(HOST_ATTR, '');
      const shadow = typeof host.attachShadow === 'function' ? host.attachShadow({ mode: 'closed' }) : host;
      const pill = this.doc.createElement('span');
      pill.setAttribute('role', 'status');
      const s = pill.style;
      s.setProperty('display', 'inline-block');
      s.setProperty('margin', '0 8px');
      s.setProperty('padding', '2px 8px');
      s.setProperty('border-radius', '999px');
      s.setProperty('font', '600 12px/18px system-ui, sans-serif');
      s.setProperty('color', '#FFFFFF');
      s.setProperty('white-space', 'nowrap');
      s.setProperty('max-width', '60vw');
      s.setProperty('overflow', 'hidden');
      s.setProperty('text-overflow', 'ellipsis');
      s.setProperty('vertical-align', 'middle');
      shadow.appendChild(pill);
      this.host = host;
      this.pill = pill;
    }

    /** Shows `badge` ({text, color, title}) after `anchor`, or fixed top-right when there is none. */
    render(anchor, badge, hidden) {
      this.last = { badge, hidden };
      if (hidden || !badge || !badge.text) {
        if (this.host) this.host.remove();
        return;
      }
      if (!this.host) this.build();
      this.pill.textContent = badge.title ? `${badge.text}  ${badge.title}` : badge.text;
      this.pill.title = `Consent Ledger: ${badge.title || badge.text}`;
      this.pill.style.setProperty('background', badge.color);
      if (anchor && anchor.parentNode) {
        this.host.style.removeProperty('position');
        if (anchor.nextSibling !== this.host) anchor.after(this.host);
      } else {
        const s = this.host.style;
        s.setProperty('position', 'fixed');
        s.setProperty('top', '8px');
        s.setProperty('right', '120px');
        s.setProperty('z-index', '2147483647');
        if (this.host.parentNode !== this.doc.body) this.doc.body.appendChild(this.host);
      }
    }

    /** The site re-rendered and dropped the badge: put it back (cheap when nothing changed). */
    reattach(findAnchor) {
      if (this.host && this.last && !this.host.isConnected) this.render(findAnchor(), this.last.badge, this.last.hidden);
    }
  }

  CL.PageBadge = PageBadge;
})(globalThis);
