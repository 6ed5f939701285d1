'use strict';
// worker_threads: each thread loads its own instance of the addon and
// opens the store itself; the threads of a process share one native
// handle of a directory (LMDB allows one environment per process), which
// closes with the last of them.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { open } = require('..');
const { tmpStoreDir, readAll } = require('./helpers.js');

const THREADS = 3;
const COUNT = 300;

function runThread(workerData) {
  return new Promise((resolve, reject) => {
    const w = new Worker(path.join(__dirname, 'fixtures', 'thread-worker.js'), { workerData });
    w.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
    w.once('error', reject);
  });
}

test('worker_threads finalize into one store: each reservation once', async (t) => {
  const dir = tmpStoreDir(t);
  // the main thread holds the same store open meanwhile
  const main = open(dir, { groupCommit: true, noSync: true, feedCap: 1000 });
  t.after(() => main.close());
  await main.ready;
  const reports = await Promise.all(Array.from({ length: THREADS },
    (_, id) => runThread({ dir, id, count: COUNT })));
  for (let i = 0; i < COUNT; i++) {
    const created = reports.filter((r) => r.statuses[i] === 'created');
    assert.equal(created.length, 1, `rsv-${i} created once`);
  }
  const entries = await readAll(main, 'shared@example.com', 1000);
  assert.equal(entries.length, COUNT);
  assert.equal(new Set(entries.map((e) => e.reservationId)).size, COUNT);
  assert.equal(await main.unread('shared@example.com'), COUNT);
});

test('a thread that opens the open store with other options gets EF_EINVAL', async (t) => {
  const dir = tmpStoreDir(t);
  const a = open(dir, { feedCap: 10 });
  t.after(() => a.close());
  await a.ready;
  const b = open(dir, { feedCap: 20 });
  await assert.rejects(b.ready, { code: 'EF_EINVAL', message: /already open in this process/ });
  await b.close();
  const c = open(dir, { feedCap: 10 });
  await c.ready;
  await c.close(); // a, sharing the handle, stays usable
  assert.equal(await a.unread('o'), 0);
});

test('a thread that exits without close releases its share', async (t) => {
  const dir = tmpStoreDir(t);
  const src = `const { open } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const s = open(${JSON.stringify(dir)}, { noSync: true });
    s.finalize({ owner: 'o', reservationId: 'r' }).then(() => process.exit(0));`;
  await new Promise((resolve, reject) => {
    const w = new Worker(src, { eval: true });
    w.once('exit', resolve);
    w.once('error', reject);
  });
  const store = open(dir, { feedCap: 5 }); // other options: nothing left open
  t.after(() => store.close());
  assert.equal((await store.get('o', 'r')).reservationId, 'r');
});

test('a thread terminated with calls in flight does not crash the process', async (t) => {
  const dir = tmpStoreDir(t);
  const src = `const { open } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const { parentPort } = require('node:worker_threads');
    const s = open(${JSON.stringify(dir)}, { groupCommit: true });
    for (let i = 0; i < 2000; i++) s.finalize({ owner: 'o' + (i % 5), reservationId: 'r' + i });
    parentPort.postMessage('queued');`;
  const w = new Worker(src, { eval: true });
  await new Promise((resolve) => w.once('message', resolve));
  await w.terminate();
  // the calls that ran are whole; the store is consistent and reusable
  // (same options: calls of the dead thread may still be finishing)
  const store = open(dir, { groupCommit: true });
  t.after(() => store.close());
  const check = await store.check();
  assert.equal(check.violations, 0, JSON.stringify(check.found));
  await store.finalize({ owner: 'o0', reservationId: 'after' });
});
