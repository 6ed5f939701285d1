'use strict';
// Closing: twice is fine, calls after it reject with a code, and calls in
// flight when it is called finish (or reject with a code), never crash:
// ef_close runs only once the last of them is done.

const test = require('node:test');
const assert = require('node:assert/strict');
const { open } = require('..');
const { tmpStoreDir, readAll } = require('./helpers.js');

test('close twice is fine and returns the same promise', async (t) => {
  const store = open(tmpStoreDir(t));
  await store.ready;
  const a = store.close();
  const b = store.close();
  assert.equal(a, b);
  await a;
  await store.close();
});

test('close before the store ever opened is fine', async (t) => {
  const store = open(tmpStoreDir(t));
  await store.close();
  await store.close();
});

test('calls after close reject with EF_EINVAL store is closed', async (t) => {
  const store = open(tmpStoreDir(t));
  await store.finalize({ owner: 'o', reservationId: 'r' });
  await store.close();
  const calls = [
    store.finalize({ owner: 'o', reservationId: 'r2' }), store.page('o'), store.get('o', 'r'),
    store.unread('o'), store.markRead('o', 'r'), store.markAllRead('o'), store.sweep(),
    store.migrate(), store.check(),
  ];
  for (const p of calls) {
    await assert.rejects(p, { code: 'EF_EINVAL', message: 'store is closed' });
  }
});

test('closing with thousands of calls in flight does not crash', async (t) => {
  const dir = tmpStoreDir(t);
  const store = open(dir, { noSync: true, groupCommit: true, feedCap: 10000 });
  const calls = [];
  for (let i = 0; i < 3000; i++) {
    const owner = `owner${i % 7}`;
    if (i % 3 === 2) calls.push(store.page(owner, { limit: 20 }));
    else calls.push(store.finalize({ owner, reservationId: `r${i}`, payload: { i } }));
  }
  const closed = store.close(); // not awaited first: calls are in flight
  const late = store.finalize({ owner: 'owner0', reservationId: 'late' }).catch((e) => e);
  const settled = await Promise.allSettled(calls);
  await closed;
  assert.equal((await late).code, 'EF_EINVAL');
  const acked = new Set();
  settled.forEach((s, i) => {
    if (s.status === 'rejected') {
      assert.match(s.reason.code, /^EF_E[A-Z]+$/, `call ${i}: ${s.reason.message}`);
    } else if (i % 3 !== 2) {
      assert.equal(s.value.status, 'created');
      acked.add(`r${i}`);
    }
  });
  // the calls made before close() were in flight, so they all ran
  assert.equal(acked.size, 2000);
  const again = open(dir, { feedCap: 10000 });
  t.after(() => again.close());
  const found = [];
  for (let o = 0; o < 7; o++) found.push(...(await readAll(again, `owner${o}`, 1000)));
  assert.deepEqual(new Set(found.map((e) => e.reservationId)), acked);
  assert.equal(found.length, acked.size, 'each exactly once');
});

test('a store dropped without close is released when collected', async (t) => {
  const dir = tmpStoreDir(t);
  await (async () => {
    const store = open(dir);
    await store.finalize({ owner: 'o', reservationId: 'r' });
  })();
  // The native handle is freed by the garbage collector when it runs; a
  // second open of the same directory in this process shares or reopens
  // it either way, never two environments at once.
  const store = open(dir);
  assert.equal((await store.get('o', 'r')).reservationId, 'r');
  await store.close();
});
