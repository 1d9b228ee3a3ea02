/**
 * A small key-value view of one chrome.storage area (local or session), plus an in-memory
 * area with the same promise API for the unit tests. Every write goes through `update`, which
 * runs one at a time per store, so two handlers in the worker never lose each other's change.
 */

export class Store {
  constructor(area) {
    this.area = area;
    this.chain = Promise.resolve();
  }

  async get(key, fallback = undefined) {
    const got = await this.area.get(key);
    return got[key] === undefined ? fallback : got[key];
  }

  async getAll(prefix) {
    const got = await this.area.get(null);
    return Object.fromEntries(Object.entries(got).filter(([k]) => k.startsWith(prefix)));
  }

  set(key, value) {
    return this.update(key, () => value);
  }

  remove(key) {
    return this.run(() => this.area.remove(key));
  }

  /** Read-modify-write of one key, serialised; `fn(old)` returns the new value (undefined: remove). */
  update(key, fn, fallback = undefined) {
    return this.run(async () => {
      const old = await this.get(key, fallback);
      const next = await fn(old);
      if (next === undefined) await this.area.remove(key);
      else await this.area.set({ [key]: next });
      return next;
    });
  }

  run(fn) {
    const result = this.chain.then(fn);
    this.chain = result.catch(() => {});
    return result;
  }
}

/** A stand-in for chrome.storage.local / .session in tests (values deep-copied like the real one). */
export class MemoryArea {
  constructor(initial = {}) {
    this.data = structuredClone(initial);
  }

  async get(keys) {
    if (keys === null || keys === undefined) return structuredClone(this.data);
    const list = Array.isArray(keys) ? keys : [keys];
    const out = {};
    for (const k of list) if (k in this.data) out[k] = structuredClone(this.data[k]);
    return out;
  }

  async set(items) {
    for (const [k, v] of Object.entries(items)) this.data[k] = structuredClone(v);
  }

  async remove(keys) {
    for (const k of Array.isArray(keys) ? keys : [keys]) delete this.data[k];
  }
}
