'use strict';
// Thousands of finalizations in flight from one process: every
// acknowledged one is in the feed exactly once, each duplicate attempt of
// a reservation but one says 'duplicate', and the event loop keeps turning
// meanwhile (the calls run on the thread pool, syncs included).

const test = require('node:test');
const assert = require('node:assert/strict');
const { open } = require('..');
const { tmpStoreDir, readAll } = require('./helpers.js');

const OWNERS = 10;
const RESERVATIONS = 2500; // each attempted twice: 5,000 calls at once

async function finalizeAll(store) {
  const calls = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    for (let i = 0; i < RESERVATIONS; i++) {
      calls.push(store.finalize({
        owner: `Owner${i % OWNERS}@Example.com`, reservationId: `rsv-${i}`,
        ip: '192.0.2.1', payload: { attempt, i },
      }).then((r) => ({ i, attempt, r })));
    }
  }
  return Promise.all(calls);
}

async function assertExactlyOnce(store, results) {
  const created = new Map();
  for (const { i, attempt, r } of results) {
    if (r.status === 'created') {
      assert.ok(!created.has(i), `rsv-${i} created twice`);
      created.set(i, attempt);
    } else {
      assert.equal(r.status, 'duplicate');
    }
    assert.equal(r.entry.reservationId, `rsv-${i}`);
  }
  assert.equal(created.size, RESERVATIONS, 'one attempt of each created it');
  for (const { i, r } of results) {
    assert.equal(r.entry.payload.attempt, created.get(i), 'both attempts see the first entry');
  }
  let total = 0;
  for (let o = 0; o < OWNERS; o++) {
    const ids = (await readAll(store, `owner${o}@example.com`, 1000)).map((e) => e.reservationId);
    assert.equal(new Set(ids).size, ids.length, 'no entry twice');
    total += ids.length;
  }
  assert.equal(total, RESERVATIONS, 'every acknowledged finalization is there');
}

test('5,000 finalizations in flight: each reservation exactly once', async (t) => {
  const store = open(tmpStoreDir(t), { noSync: true, groupCommit: true, feedCap: 1000 });
  t.after(() => store.close());
  await assertExactlyOnce(store, await finalizeAll(store));
});

test('the event loop keeps turning while 5,000 durable calls are in flight', async (t) => {
  // Durable (synced) commits: the slow case a blocking binding would stall
  // on. A 10 ms timer measures its largest gap. This is a liveness check,
  // not a performance assertion: a binding that synced or waited for the
  // writer lock on the JS thread would stall the loop for the whole run
  // (seconds); the bound is generous so that a loaded CI machine passes.
  const store = open(tmpStoreDir(t), { groupCommit: true, feedCap: 1000 });
  t.after(() => store.close());
  await store.ready;
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 10);
  const started = performance.now();
  let results;
  try {
    results = await finalizeAll(store);
  } finally {
    clearInterval(timer);
  }
  const elapsed = performance.now() - started;
  t.diagnostic(`5000 durable calls in ${elapsed.toFixed(0)} ms; ` +
    `timer ticks ${ticks}, largest gap ${maxGap.toFixed(1)} ms`);
  assert.ok(maxGap < 1000, `largest timer gap ${maxGap.toFixed(0)} ms`);
  await assertExactlyOnce(store, results);
});

test('pages read while writers commit are whole and newest first', async (t) => {
  // A page is read on the JS thread when the library can without waiting
  // (ef_feed_page_try), else on the pool; either way it is one snapshot:
  // no entry twice, newest first, every entry of an earlier page still
  // there (the cap is not reached), while durable writers commit.
  const store = open(tmpStoreDir(t), { feedCap: 100000 });
  t.after(() => store.close());
  const owner = 'reader@example.com';
  let writing = true;
  const writers = (async () => {
    for (let i = 0; i < 600 && writing; i++) {
      await Promise.all([0, 1, 2, 3].map((k) => store.finalize({
        owner, reservationId: `w${i}-${k}`, ip: '192.0.2.9', payload: { i },
        createdAt: 1700000000000 + i * 4 + k,
      })));
    }
  })();
  let seen = 0;
  for (let n = 0; n < 400; n++) {
    const { entries } = await store.page(owner, { limit: 100 });
    const ids = entries.map((e) => e.reservationId);
    assert.equal(new Set(ids).size, ids.length, 'no entry twice in a page');
    for (let i = 1; i < entries.length; i++) {
      assert.ok(entries[i - 1].createdMs >= entries[i].createdMs, 'newest first');
    }
    assert.ok(entries.length >= Math.min(seen, 100), 'nothing seen before is gone');
    seen = entries.length;
    if (n % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  writing = false;
  await writers;
});
