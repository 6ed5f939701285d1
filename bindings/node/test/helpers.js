'use strict';
// Shared by the tests: a fresh store directory per test, removed after.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function tmpStoreDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgefeed-node-'));
  // registered before the test's own close(), so it can run while a store
  // is still opening on the pool and making its files: retry ENOTEMPTY
  t.after(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 }));
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
