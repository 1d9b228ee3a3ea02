import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Outbox } from '../lib/outbox.js';
import { MemoryArea, Store } from '../lib/store.js';

const ev = (i, type = 'chat.activity') => ({ id: `event-${String(i).padStart(4, '0')}`, type });

describe('outbox', () => {
  it('keeps order, hands out batches, removes only what was delivered', async () => {
    const box = new Outbox(new Store(new MemoryArea()));
    await box.add([ev(1), ev(2), ev(3)]);
    assert.deepEqual((await box.peek(2)).map((e) => e.id), ['event-0001', 'event-0002']);
    await box.remove(['event-0001']);
    assert.deepEqual((await box.peek(10)).map((e) => e.id), ['event-0002', 'event-0003']);
  });

  it('survives a restart of the worker (same storage, new objects)', async () => {
    const area = new MemoryArea();
    await new Outbox(new Store(area)).add([ev(1), ev(2)]);
    const again = new Outbox(new Store(area));
    assert.equal(await again.size(), 2);
    assert.deepEqual((await again.peek(1))[0], ev(1)); // the same id: a retry is idempotent
  });

  it('serialises concurrent writes without losing any', async () => {
    const box = new Outbox(new Store(new MemoryArea()));
    await Promise.all(Array.from({ length: 50 }, (_, i) => box.add([ev(i)])));
    assert.equal(await box.size(), 50);
  });

  it('drops the oldest chat.seen first when full, then the oldest', async () => {
    const box = new Outbox(new Store(new MemoryArea()), { max: 3 });
    await box.add([ev(1), ev(2, 'chat.seen'), ev(3), ev(4)]);
    assert.deepEqual((await box.peek(9)).map((e) => e.id), ['event-0001', 'event-0003', 'event-0004']);
    await box.add([ev(5)]);
    assert.deepEqual((await box.peek(9)).map((e) => e.id), ['event-0003', 'event-0004', 'event-0005']);
  });
});
