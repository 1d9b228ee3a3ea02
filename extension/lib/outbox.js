/**
 * The outbox: events waiting for the server, kept in chrome.storage.local so they survive a
 * browser restart and a stopped server. Events leave it only when the server has answered
 * that it stored them (or refused one as invalid, which no retry can fix).
 */

export const OUTBOX_KEY = 'outbox';
export const MAX_EVENTS = 20_000;

export class Outbox {
  constructor(store, { key = OUTBOX_KEY, max = MAX_EVENTS } = {}) {
    this.store = store;
    this.key = key;
    this.max = max;
  }

  /** Appends events; past the cap the oldest `chat.seen` go first, then the oldest of any type. */
  add(events) {
    return this.store.update(this.key, (old) => {
      const queue = old.concat(events);
      let excess = queue.length - this.max;
      if (excess <= 0) return queue;
      const kept = [];
      for (const ev of queue) {
        if (excess > 0 && ev.type === 'chat.seen') excess -= 1;
        else kept.push(ev);
      }
      return excess > 0 ? kept.slice(excess) : kept;
    }, []);
  }

  /** The oldest `n` events, in the order they were queued. */
  async peek(n) {
    return (await this.store.get(this.key, [])).slice(0, n);
  }

  async size() {
    return (await this.store.get(this.key, [])).length;
  }

  /** Removes the events with these ids. */
  remove(ids) {
    const gone = new Set(ids);
    return this.store.update(this.key, (old) => old.filter((ev) => !gone.has(ev.id)), []);
  }
}
