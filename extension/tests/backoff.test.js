import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MAX_DELAY_MS, retryDelay } from '../lib/backoff.js';

describe('retry back-off', () => {
  it('is zero before any failure, then doubles, with jitter in the upper half', () => {
    assert.equal(retryDelay(0), 0);
    const lo = (n) => retryDelay(n, { random: () => 0 });
    const hi = (n) => retryDelay(n, { random: () => 1 });
    assert.deepEqual([1, 2, 3, 4].map(hi), [2000, 4000, 8000, 16000]);
    assert.deepEqual([1, 2, 3].map(lo), [1000, 2000, 4000]);
  });

  it('is capped, even after very many failures', () => {
    assert.equal(retryDelay(1000, { random: () => 1 }), MAX_DELAY_MS);
    assert.ok(retryDelay(50) <= MAX_DELAY_MS);
  });
});
