/**
 * The badge of CONTRACT.md section 4: the action badge per tab and the in-page badge come
 * from one function of the tab's state and the connection's state, recomputed whole every
 * time (never an incremental counter), so a worker restart cannot leave a stale badge.
 */

export const BADGES = {
  yes: { text: 'T', color: '#B45309' },
  was: { text: 'W', color: '#7C3AED' },
  no: { text: '-', color: '#15803D' },
  unknown: { text: '?', color: '#6B7280' },
  error: { text: '!', color: '#B91C1C' },
};
export const BLANK = { text: '', color: '#6B7280', title: '' };
const UNKNOWN_TITLE = "Training setting not recorded; open the provider's privacy settings once";

/** YYYY-MM-DD of an RFC 3339 time, or the text unchanged when it is not one. */
export function day(iso) {
  return typeof iso === 'string' && /^\d{4}-\d{2}-\d{2}/.test(iso) ? iso.slice(0, 10) : String(iso);
}

const keptUntil = (status) => (status.expires_at ? day(status.expires_at) : 'you delete it');

/** The badge table's title for a chat status (report row fields). */
export function badgeTitle(status) {
  const windows = Array.isArray(status.training_windows) ? status.training_windows : [];
  switch (status.training) {
    case 'yes':
      return `May be used for training since ${windows.length ? day(windows[0].from) : 'an unknown date'}; kept until ${keptUntil(status)}`;
    case 'was': {
      const last = windows[windows.length - 1] || {};
      return `Was usable for training from ${windows.length ? day(windows[0].from) : '?'} to ${last.until ? day(last.until) : '?'}; kept until ${keptUntil(status)}`;
    }
    case 'no':
      return `Not used for training; kept until ${keptUntil(status)}`;
    default:
      return UNKNOWN_TITLE;
  }
}

/**
 * The badge for a chat status from the server. The server's own `badge` is used when it is
 * one of the table's rows; otherwise it is rebuilt from `training`. Anything unrecognised
 * shows `?`: a guess would be worse than saying we do not know.
 */
export function badgeFromStatus(status) {
  if (!status || typeof status !== 'object') return { ...BADGES.unknown, title: 'This chat is not in the ledger yet' };
  const row = BADGES[status.training] && status.training !== 'error' ? BADGES[status.training] : BADGES.unknown;
  const given = status.badge;
  if (given && given.text === row.text && String(given.color).toUpperCase() === row.color
    && typeof given.title === 'string' && given.title) {
    return { text: row.text, color: row.color, title: given.title };
  }
  return { ...row, title: badgeTitle(status) };
}

/**
 * What a tab shows. `tab` is the tab's state (undefined: a page we do not cover), `link` the
 * connection: {paired, state} with state one of ok | unreachable | untrusted | refused.
 */
export function badgeForTab(tab, link) {
  if (!tab || !tab.provider) return BLANK;
  if (!link || !link.paired) {
    return { ...BADGES.error, title: 'Consent Ledger server not paired' };
  }
  if (link.state === 'refused') {
    return { ...BADGES.error, title: 'Consent Ledger server not paired (it refuses this extension: pair again)' };
  }
  if (link.state === 'unreachable' || link.state === 'untrusted') {
    const why = link.state === 'untrusted' ? ' (it could not prove it is your ledger)' : '';
    return { ...BADGES.error, title: `Consent Ledger server not reachable${why}` };
  }
  if (tab.problems && tab.problems.length) {
    return { ...BADGES.unknown, title: `Consent Ledger cannot read this page: ${tab.problems[0]}` };
  }
  if (!tab.chat_id) return BLANK;
  if (tab.status === undefined && tab.statusError) return { ...BADGES.unknown, title: tab.statusError };
  if (tab.status === undefined) return { ...BADGES.unknown, title: 'Asking the ledger about this chat' };
  return badgeFromStatus(tab.status);
}
