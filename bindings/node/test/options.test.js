'use strict';
// Group commit is the library's default (issue 13): open() without the
// option and with groupCommit: true give the same handle, which shares
// the store's commit queue (commit.queue in its directory); groupCommit:
// false commits each call on its own and makes no queue file.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { open } = require('..');
const { tmpStoreDir } = require('./helpers.js');

async function finalizeOne(options, dir) {
  const store = open(dir, options);
  const r = await store.finalize({ owner: 'a@example.com', reservationId: 'r1' });
  assert.equal(r.status, 'created');
  await store.close();
  return fs.existsSync(path.join(dir, 'commit.queue'));
}

test('group commit is on by default and with groupCommit: true', async (t) => {
  assert.equal(await finalizeOne(undefined, tmpStoreDir(t)), true);
  assert.equal(await finalizeOne({ groupCommit: true }, tmpStoreDir(t)), true);
});

test('groupCommit: false commits each call on its own, with no queue file', async (t) => {
  assert.equal(await finalizeOne({ groupCommit: false }, tmpStoreDir(t)), false);
});

test('no option and groupCommit: true are the same handle to share', async (t) => {
  const dir = tmpStoreDir(t);
  const a = open(dir);
  const b = open(dir, { groupCommit: true }); // not "other options"
  await b.ready;
  await a.finalize({ owner: 'a@example.com', reservationId: 'r1' });
  const got = await b.get('a@example.com', 'r1');
  assert.equal(got.reservationId, 'r1');
  await a.close();
  await b.close();
});
