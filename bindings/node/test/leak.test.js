'use strict';
// No leak over a long loop: the resident set levels off. After a warm-up
// (allocator arenas, LMDB's map and V8's heap grow to their working size),
// many more rounds of every call must not grow it by more than a generous
// bound; a leak of even one page's entries per round would exceed it
// several times over.

const test = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');
const { open } = require('..');
const { tmpStoreDir } = require('./helpers.js');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const IN_FLIGHT = 100;

async function rounds(store, from, n) {
  for (let k = from; k < from + n; k++) {
    const calls = [];
    for (let j = 0; j < IN_FLIGHT; j++) {
      const owner = `owner${j % 10}`;
      const rid = `rsv-${k}-${j}`;
      calls.push(store.finalize({ owner, reservationId: rid, ip: '198.51.100.7',
        payload: { fileName: `file-${rid}.pdf`, size: k } }));
      calls.push(store.page(owner, { limit: 50 }));
      calls.push(store.get(owner, rid));
      calls.push(store.unread(owner));
      // errors take their own path: a rejected call must not leak either
      calls.push(store.get(owner, '').catch((e) => e.code));
    }
    await Promise.all(calls);
  }
}

function rssMiB() {
  gc();
  return process.memoryUsage().rss / 1048576;
}

test('memory levels off over a long loop of calls', async (t) => {
  const store = open(tmpStoreDir(t), { noSync: true, groupCommit: true });
  t.after(() => store.close());
  await rounds(store, 0, 100); // warm-up: 50,000 calls
  const warm = rssMiB();
  await rounds(store, 100, 400); // 200,000 calls more
  const after = rssMiB();
  t.diagnostic(`rss after warm-up ${warm.toFixed(1)} MiB, after 4x more ${after.toFixed(1)} MiB`);
  assert.ok(after - warm < 40, `rss grew ${(after - warm).toFixed(1)} MiB`);
});
