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

// A store on a real Redis Cluster of the test's own (3 masters, started by
// the repository's scripts/redis-cluster.sh, stopped after the test), or
// null when this machine has no redis-server.
function redisStore(t) {
  const { spawnSync } = require('node:child_process');
  const crypto = require('node:crypto');
  const script = path.join(__dirname, '..', '..', '..', 'scripts', 'redis-cluster.sh');
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which.status !== 0 || !fs.existsSync(script)) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgefeed-node-cluster-'));
  const started = spawnSync(script, ['start', dir, '3', '0'], { encoding: 'utf8' });
  t.after(() => {
    spawnSync(script, ['stop', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  if (started.status !== 0) throw new Error(`the test cluster did not start: ${started.stderr}`);
  return `${started.stdout.trim()}?store=node-${crypto.randomBytes(6).toString('hex')}`;
}

module.exports = { tmpStoreDir, readAll, redisStore };
