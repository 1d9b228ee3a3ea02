/*
 * Consent Ledger: helpers shared by the site adapters.
 *
 * The adapters are loaded two ways: as classic content scripts (listed in manifest.json,
 * before content/watcher.js), and as ES modules by the background worker and the node tests
 * (through adapters/index.js). So these files use no import/export: each registers itself on
 * globalThis.ConsentLedger, which in a content script is the isolated world's global, never
 * the page's.
 */
(function (root) {
  'use strict';
  const CL = (root.ConsentLedger = root.ConsentLedger || {});
  CL.adapters = CL.adapters || {};

  const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
  const TEMPORARY = new RegExp(`^temporary-${UUID}$`);

  function toUrl(url) {
    if (url instanceof URL) return url;
    try {
      return new URL(String(url));
    } catch (e) {
      return null;
    }
  }

  /** A query flag such as ?incognito, ?incognito=1 or ?temporary-chat=true ("false"/"0" = off). */
  function queryFlag(url, name) {
    const u = toUrl(url);
    if (!u || !u.searchParams.has(name)) return false;
    const v = u.searchParams.get(name).toLowerCase();
    return v !== 'false' && v !== '0';
  }

  /** The visible text of an element, whitespace collapsed, or null when empty. */
  function textOf(el) {
    if (!el) return null;
    const t = (el.textContent || '').replace(/\s+/g, ' ').trim();
    return t || null;
  }

  /** The first element matching any of the selectors, in the selectors' order. */
  function first(doc, selectors) {
    for (const sel of selectors) {
      const el = doc.querySelector(sel);
      if (el) return el;
    }
    return null;
  }

  /** The closest ancestor-or-self matching any of the selectors. */
  function closestAny(el, selectors) {
    if (!el || typeof el.closest !== 'function') return null;
    for (const sel of selectors) {
      const hit = el.closest(sel);
      if (hit) return hit;
    }
    return null;
  }

  /** document.title without a site suffix ("<title> - Claude"); null when it is just the site name. */
  function titleFromDocument(doc, suffixes, bare) {
    const raw = (doc.title || '').replace(/\s+/g, ' ').trim();
    if (!raw) return null;
    for (const s of suffixes) {
      if (raw.endsWith(s)) {
        const t = raw.slice(0, -s.length).trim();
        return t && !bare.includes(t) ? t : null;
      }
    }
    return bare.includes(raw) ? null : raw;
  }

  const LANDMARKS = /^(BODY|HTML|MAIN|NAV|HEADER|ASIDE|FOOTER)$/;

  /**
   * A chat id carried by the one link of the row around `el` (a sidebar row's menu button),
   * via `parse(url)`. Climbs at most `depth` levels, stops at landmarks, and gives up when a
   * level holds more than one link: which chat was meant would be a guess.
   */
  function chatIdNear(el, origin, parse, depth) {
    let node = el;
    for (let i = 0; node && i <= depth && !LANDMARKS.test(node.tagName || ''); i++, node = node.parentElement) {
      const links = node.matches && node.matches('a[href]') ? [node] : node.querySelectorAll ? node.querySelectorAll('a[href]') : [];
      if (links.length > 1) return null;
      if (links.length === 1) {
        try {
          return parse(new URL(links[0].getAttribute('href'), origin));
        } catch (e) {
          return null;
        }
      }
    }
    return null;
  }

  /**
   * The adapter members that only apply a site's selectors (`titleAnchor`, `composer`,
   * `sendButton`): the same on every site, so written once; the selectors stay in the
   * site's own file.
   */
  function selectorMembers(sel) {
    return {
      titleAnchor: (doc) => first(doc, sel.titleAnchor),
      isComposer: (el) => !!closestAny(el, sel.composer),
      isSendButton: (el) => !!closestAny(el, sel.sendButton),
      hasComposer: (doc) => !!first(doc, sel.composer),
    };
  }

  /** The chat id that `pattern` (its first group) finds in the path of a URL on `host`, or null. */
  function chatIdFromPath(url, host, pattern) {
    const u = toUrl(url);
    if (!u || u.hostname !== host) return null;
    const m = pattern.exec(u.pathname);
    return m ? m[1] : null;
  }

  /** A test for a site's chat ids: the whole string matches `pattern`, or it is a temporary chat's id. */
  function chatIdTest(pattern) {
    return (id) => typeof id === 'string' && (pattern.test(id) || TEMPORARY.test(id));
  }

  const UUID_ONLY = new RegExp(`^${UUID}$`);

  CL.pageTools = {
    UUID, UUID_ONLY, TEMPORARY, toUrl, queryFlag, textOf, first, closestAny, titleFromDocument, chatIdNear,
    selectorMembers, chatIdFromPath, chatIdTest,
  };
})(globalThis);
