'use strict';
// The feed's semantics through JavaScript: DESIGN.md's rules, as a JS
// worker sees them.

const test = require('node:test');
const assert = require('node:assert/strict');
const { open } = require('..');
const { tmpStoreDir, readAll } = require('./helpers.js');

// a day ago, to the second: within the TTL and the IP retention
const T0 = Math.floor((Date.now() - 86400000) / 1000) * 1000;

test('finalize created then duplicate returns the first entry', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  const first = await store.finalize({
    owner: 'alice@example.com', reservationId: 'rsv-1', createdAt: T0,
    ip: '203.0.113.7', payload: { fileName: 'a.pdf', size: 10 },
  });
  assert.equal(first.status, 'created');
  assert.deepEqual(first.entry, {
    reservationId: 'rsv-1', createdAt: new Date(T0).toISOString(), createdMs: T0,
    ip: '203.0.113.7', unread: true, payload: { fileName: 'a.pdf', size: 10 },
  });
  const again = await store.finalize({
    owner: 'alice@example.com', reservationId: 'rsv-1', createdAt: T0 + 5000,
    ip: '198.51.100.1', payload: { fileName: 'other.pdf' },
  });
  assert.equal(again.status, 'duplicate');
  assert.deepEqual(again.entry, first.entry, 'first write wins');
  assert.equal((await readAll(store, 'alice@example.com')).length, 1);
});

test('createdAt accepts milliseconds, a Date, ISO text and digits', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  const forms = [T0, new Date(T0 + 1), new Date(T0 + 2).toISOString(), String(T0 + 3),
    new Date(T0 + 4 + 7200000).toISOString().replace('Z', '+02:00')];
  const got = [];
  for (const [i, createdAt] of forms.entries()) {
    const r = await store.finalize({ owner: 'o', reservationId: `r${i}`, createdAt });
    got.push(r.entry.createdMs);
  }
  assert.deepEqual(got, [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]);
  const now = Date.now();
  const r = await store.finalize({ owner: 'o', reservationId: 'now' });
  assert.ok(Math.abs(r.entry.createdMs - now) < 60000, 'no createdAt: now');
});

test('payload given as JSON text is kept and parsed back', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  const r = await store.finalize({ owner: 'o', reservationId: 'r', createdAt: T0,
    payload: '{"b":1,"a":[true,null,"x"]}' });
  assert.deepEqual(r.entry.payload, { b: 1, a: [true, null, 'x'] });
  const none = await store.finalize({ owner: 'o', reservationId: 'n', createdAt: T0 });
  assert.equal(none.entry.payload, null);
  assert.equal(none.entry.ip, null);
});

test('owner spellings canonicalize to one owner', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  const a = await store.finalize({ owner: ' Alice@Example.com ', reservationId: 'r1', createdAt: T0 });
  const b = await store.finalize({ owner: 'alice@example.com', reservationId: 'r1', createdAt: T0 });
  assert.equal(a.status, 'created');
  assert.equal(b.status, 'duplicate');
  await store.finalize({ owner: 'ALICE@EXAMPLE.COM', reservationId: 'r2', createdAt: T0 + 1 });
  for (const spelling of ['alice@example.com', '\tAlice@EXAMPLE.com\n', 'ALICE@example.COM']) {
    const ids = (await readAll(store, spelling)).map((e) => e.reservationId);
    assert.deepEqual(ids, ['r2', 'r1'], spelling);
    assert.equal(await store.unread(spelling), 2);
    assert.notEqual(await store.get(spelling, 'r1'), null);
  }
  // reservation ids are case-sensitive
  assert.equal(await store.get('alice@example.com', 'R1'), null);
});

test('pages walk the feed newest first with cursors, stable under writes', async (t) => {
  const store = open(tmpStoreDir(t), { feedCap: 1000 });
  t.after(() => store.close());
  for (let i = 0; i < 25; i++) {
    await store.finalize({ owner: 'p', reservationId: `r${String(i).padStart(2, '0')}`, createdAt: T0 + i * 1000 });
  }
  const first = await store.page('p', { limit: 10 });
  assert.equal(first.entries.length, 10);
  assert.equal(first.entries[0].reservationId, 'r24');
  assert.equal(typeof first.nextCursor, 'string');
  // a newer entry written between pages is neither repeated nor makes the
  // next page skip an older one
  await store.finalize({ owner: 'p', reservationId: 'newer', createdAt: T0 + 100000 });
  const seen = first.entries.map((e) => e.reservationId);
  let cursor = first.nextCursor;
  while (cursor !== null) {
    const page = await store.page('p', { limit: 10, cursor });
    seen.push(...page.entries.map((e) => e.reservationId));
    cursor = page.nextCursor;
  }
  const want = [];
  for (let i = 24; i >= 0; i--) want.push(`r${String(i).padStart(2, '0')}`);
  assert.deepEqual(seen, want);
  assert.equal((await store.page('p')).entries.length, 26, 'default limit 50');
  assert.deepEqual(await store.page('nobody'), { entries: [], nextCursor: null });
});

test('the feed keeps the newest feedCap entries', async (t) => {
  const store = open(tmpStoreDir(t), { feedCap: 3 });
  t.after(() => store.close());
  for (let i = 0; i < 5; i++) {
    await store.finalize({ owner: 'c', reservationId: `r${i}`, createdAt: T0 + i });
  }
  assert.deepEqual((await readAll(store, 'c')).map((e) => e.reservationId), ['r4', 'r3', 'r2']);
  const old = await store.finalize({ owner: 'c', reservationId: 'old', createdAt: T0 - 1000 });
  assert.equal(old.status, 'created');
  assert.equal(old.entry, null, 'trimmed at once: no entry');
});

test('unread counts drop with markRead and markAllRead', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  for (let i = 0; i < 4; i++) {
    await store.finalize({ owner: 'u', reservationId: `r${i}`, createdAt: T0 + i });
  }
  assert.equal(await store.unread('u'), 4);
  await store.markRead('u', 'r1');
  await store.markRead('u', 'r1'); // idempotent
  assert.equal(await store.unread('u'), 3);
  assert.equal((await store.get('u', 'r1')).unread, false);
  assert.equal((await store.get('u', 'r2')).unread, true);
  await assert.rejects(store.markRead('u', 'missing'), { code: 'EF_ENOTFOUND' });
  await store.markAllRead('u');
  await store.markAllRead('u');
  assert.equal(await store.unread('u'), 0);
  assert.ok((await readAll(store, 'u')).every((e) => e.unread === false));
  await store.markAllRead('nobody');
  assert.equal(await store.unread('nobody'), 0);
});

test('sweep, migrate and check answer with their statistics', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  await store.finalize({ owner: 'm', reservationId: 'r', createdAt: T0, ip: '192.0.2.1' });
  const sweep = await store.sweep();
  assert.equal(typeof sweep.nowMs, 'number');
  assert.equal(sweep.entriesDeleted, 0);
  const mig = await store.migrate({ dryRun: true });
  assert.equal(mig.dryRun, true);
  assert.equal(mig.owners, 0);
  const check = await store.check();
  assert.equal(check.ok, true);
  assert.equal(check.entries, 1);
  assert.deepEqual(check.found, []);
});

test('ready resolves once open and rejects with the open error', async (t) => {
  const store = open(tmpStoreDir(t));
  assert.equal(await store.ready, store);
  await store.close();
  const missing = open(tmpStoreDir(t), { noCreate: true });
  await assert.rejects(missing.ready, { code: 'EF_ENOTFOUND' });
  await assert.rejects(missing.unread('o'), { code: 'EF_ENOTFOUND', message: /no store/ });
  await missing.close();
});

test('ESM import gives the same API', async () => {
  const esm = await import('edgefeed');
  assert.equal(esm.open, open);
  assert.equal(typeof esm.version, 'string');
});

test('ids and payloads with quotes, backslashes and emoji come back intact', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  const rid = 'he said "hi" \\ back\\slash ü 😀 %3A:x';
  const payload = { q: '"', b: '\\', nul: '\u0000', nl: 'a\nb', u: '\u2028 😀', deep: [{ x: null }] };
  const r = await store.finalize({ owner: 'Ünïcode "Owner"', reservationId: rid, createdAt: T0, payload });
  assert.equal(r.entry.reservationId, rid);
  assert.deepEqual(r.entry.payload, payload);
  const [e] = (await store.page('Ünïcode "owner"')).entries;
  assert.equal(e.reservationId, rid);
  assert.deepEqual(e.payload, payload);
  // only ASCII letters fold: Ü stays Ü
  assert.deepEqual(await store.get('Ünïcode "OWNER"', rid), e);
  assert.equal(await store.get('ünïcode "owner"', rid), null);
});

test('calls of one turn, sent together, each get their own result', async (t) => {
  // The finalizations made in one turn of the event loop reach the library
  // as one batch (one transaction); each still answers as it would alone:
  // the first of a reservation created, a later one a duplicate with the
  // first's entry, a bad one rejected with its own code and message.
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  const owner = 'batch@example.com';
  const calls = [
    store.finalize({ owner, reservationId: 'one', payload: { n: 1 } }),
    store.finalize({ owner, reservationId: 'two', ip: '192.0.2.2' }),
    store.finalize({ owner, reservationId: 'one', payload: { n: 2 } }),
    store.finalize({ owner, reservationId: 'bad', ip: '999.1.2.3' }),
    store.finalize({ owner, reservationId: 'late', createdAt: '2020-01-01T00:00:00Z' }),
    store.finalize({ owner, reservationId: 'when', createdAt: 'yesterday' }),
  ];
  const got = await Promise.allSettled(calls);
  assert.equal(got[0].value.status, 'created');
  assert.equal(got[1].value.status, 'created');
  assert.equal(got[1].value.entry.ip, '192.0.2.2');
  assert.equal(got[2].value.status, 'duplicate');
  assert.deepEqual(got[2].value.entry.payload, { n: 1 }, 'the first write wins');
  assert.equal(got[3].status, 'rejected');
  assert.equal(got[3].reason.code, 'EF_EINVAL');
  assert.match(got[3].reason.message, /^ip:/);
  assert.equal(got[4].status, 'fulfilled'); // stale at once: written, trimmed
  assert.equal(got[4].value.entry, null);
  assert.equal(got[5].reason.code, 'EF_EINVAL');
  assert.match(got[5].reason.message, /^createdAt:/);
  const page = await store.page(owner);
  assert.deepEqual(page.entries.map((e) => e.reservationId).sort(), ['one', 'two']);
  // and the same calls one by one give the same answers
  const alone = [];
  const other = open(tmpStoreDir(t));
  t.after(() => other.close());
  for (const r of [{ reservationId: 'one', payload: { n: 1 } },
    { reservationId: 'one', payload: { n: 2 } }]) {
    alone.push(await other.finalize({ owner, ...r }));
  }
  assert.equal(alone[1].status, got[2].value.status);
});
