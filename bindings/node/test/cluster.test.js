'use strict';
// Four processes under the cluster module finalize the same reservations
// of the same owners at once: each acknowledged call is in the feed
// exactly once, and of the four attempts of a reservation exactly one got
// 'created' (the one whose entry everyone was answered with).

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('node:cluster');
const path = require('node:path');
const { open } = require('..');
const { tmpStoreDir, readAll, redisStore } = require('./helpers.js');

const WORKERS = 4;
const OWNERS = 5;
const PER_OWNER = 200;

function runWorkers(dir) {
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js') });
  const env = { EF_DIR: dir, EF_OWNERS: String(OWNERS), EF_PER_OWNER: String(PER_OWNER) };
  return Promise.all(Array.from({ length: WORKERS }, () => new Promise((resolve, reject) => {
    const w = cluster.fork(env);
    // the report may arrive after the exit is seen: wait for both
    let report = null;
    let exited = false;
    w.on('message', (m) => {
      report = m;
      if (exited) resolve(report);
    });
    w.on('exit', (code) => {
      exited = true;
      if (code !== 0) reject(new Error(`worker ${w.id} exited ${code}`));
      else if (report) resolve(report);
      else setTimeout(() => reject(new Error(`worker ${w.id} exited without a report`)), 5000);
    });
  })));
}

async function everyAckOnce(t, dir) {
  const reports = await runWorkers(dir);
  const created = new Map(); // reservation -> worker that created it
  const answers = new Map(); // reservation -> workers named by the entries
  for (const { worker, results } of reports) {
    assert.equal(results.length, OWNERS * PER_OWNER, `worker ${worker} acked every call`);
    for (const [o, r, status, entryWorker] of results) {
      const key = `rsv-${o}-${r}`;
      if (status === 'created') {
        assert.ok(!created.has(key), `${key} created by ${created.get(key)} and ${worker}`);
        created.set(key, worker);
      } else {
        assert.equal(status, 'duplicate');
      }
      if (!answers.has(key)) answers.set(key, new Set());
      answers.get(key).add(entryWorker);
    }
  }
  assert.equal(created.size, OWNERS * PER_OWNER, 'exactly one created per reservation');
  for (const [key, workers] of answers) {
    assert.deepEqual([...workers], [created.get(key)], `${key}: everyone saw the first entry`);
  }
  const store = open(dir, { feedCap: 1000 });
  t.after(() => store.close());
  for (let o = 0; o < OWNERS; o++) {
    const entries = await readAll(store, `Owner${o}@Example.com`, 77);
    assert.equal(entries.length, PER_OWNER);
    assert.equal(new Set(entries.map((e) => e.reservationId)).size, PER_OWNER);
    for (const e of entries) assert.equal(e.payload.worker, created.get(e.reservationId));
    assert.equal(await store.unread(`owner${o}@example.com`), PER_OWNER);
  }
  const check = await store.check();
  assert.equal(check.violations, 0, JSON.stringify(check.found));
}

test('4 cluster processes on the same owners: every ack exactly once', (t) =>
  everyAckOnce(t, tmpStoreDir(t)));

// The same through a redis:// address: the binding passes it to ef_open,
// and the store is on a real Redis Cluster.
test('the same on Redis Cluster: every ack exactly once', async (t) => {
  const addr = redisStore(t);
  if (!addr) return t.skip('no redis-server on this machine');
  await everyAckOnce(t, addr);
  const store = open(addr, { feedCap: 1000 }); // as everyAckOnce's, still open
  t.after(() => store.close());
  const again = await store.finalize({ owner: 'Owner0@Example.com', reservationId: 'rsv-0-0' });
  assert.equal(again.status, 'duplicate');
  await store.markRead('owner0@example.com', 'rsv-0-0');
  assert.equal(await store.unread('owner0@example.com'), PER_OWNER - 1);
  await store.sweep();
});
