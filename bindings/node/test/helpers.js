'use strict';
// Shared by the tests: a fresh store directory per test, removed after.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function tmpStoreDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgefeed-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'store');
}

// Every entry of owner's feed, page by page.
async function readAll(store, owner, limit = 100) {
  const all = [];
  let cursor = null;
  do {
    const page = await store.page(owner, { limit, cursor });
    all.push(...page.entries);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return all;
}

module.exports = { tmpStoreDir, readAll };
