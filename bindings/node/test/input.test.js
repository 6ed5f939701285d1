'use strict';
// Bad input: every variant is a rejected promise (never a synchronous
// throw, never a crash) with code 'EF_EINVAL' and a message that names the
// field; and nothing is written.

const test = require('node:test');
const assert = require('node:assert/strict');
const { open, limits } = require('..');
const { tmpStoreDir } = require('./helpers.js');

const good = { owner: 'alice@example.com', reservationId: 'rsv-1', ip: '203.0.113.7',
  payload: { fileName: 'a.pdf' } };

const circular = {};
circular.self = circular;

// field -> bad values, each one with what the message must say
const bad = {
  owner: [42, null, undefined, {}, ['a'], '', '   ', 'a\u0001b', 'a\0b', 'a\x7fb',
    'a\nb', 'x'.repeat(400), ':'.repeat(107), 'a\ud800b', '\xff'.repeat(400)],
  reservationId: [7, null, undefined, true, '', 'r\u0002', 'r\0', 'r\x7f',
    'r'.repeat(161), '%'.repeat(54), '\udfffr'],
  ip: [123, {}, '', '1.2.3', '999.1.1.1', 'not-an-ip', '1.2.3.4\n', '1.2.3.4 ',
    '::1::2', '1.2.3.4\0', 'x'.repeat(1000)],
  createdAt: ['yesterday', '', -1, 0, 1.5, NaN, Infinity, -Infinity, new Date('nope'),
    1e14, limits.createdMax + 1, Date.now() + 3600 * 1000, {}, true, 10n,
    '1970-01-01T00:00:00Z', '2026-13-45T00:00:00Z', '12345678901234567890', '1e3'],
  payload: ['[1,2]', 'not json', '{"a":', '42', '"text"', '{"a":1}{"b":2}', [1, 2], 42,
    true, { big: 'x'.repeat(limits.payloadMax) }, circular, { n: 10n }, 'null', ''],
};

for (const [field, values] of Object.entries(bad)) {
  test(`finalize rejects a bad ${field} with EF_EINVAL naming it`, async (t) => {
    const store = open(tmpStoreDir(t));
    t.after(() => store.close());
    for (const v of values) {
      const p = store.finalize({ ...good, [field]: v });
      assert.ok(p instanceof Promise, 'a promise, not a throw');
      await assert.rejects(p, (e) => {
        assert.equal(e.code, 'EF_EINVAL', `${field}=${String(v).slice(0, 30)}: ${e.message}`);
        assert.match(e.message, new RegExp(`^${field}:`),
          `${field}=${String(v).slice(0, 30)}: the message names the field: ${e.message}`);
        return true;
      });
    }
    assert.equal((await store.check()).entries, 0, 'nothing was written');
  });
}

test('finalize rejects a receive that is not an object', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  for (const v of [undefined, null, 'alice', 42, ['alice', 'r']]) {
    await assert.rejects(store.finalize(v), { code: 'EF_EINVAL', message: /^(receive|owner)/ });
  }
});

test('page rejects a bad owner, limit or cursor', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  await store.finalize(good);
  for (const limit of [0, -1, 1.5, limits.pageLimitMax + 1, '10', NaN, {}]) {
    await assert.rejects(store.page('alice@example.com', { limit }),
      { code: 'EF_EINVAL', message: /^limit/ });
  }
  for (const cursor of [42, {}, 'garbage', 'x'.repeat(2000), 'a\0b']) {
    await assert.rejects(store.page('alice@example.com', { cursor }),
      { code: 'EF_EINVAL', message: /cursor/ });
  }
  for (const owner of [undefined, 1, '', 'a\u0003']) {
    await assert.rejects(store.page(owner), { code: 'EF_EINVAL', message: /^owner/ });
  }
  await assert.rejects(store.page('alice@example.com', 'limit=5'),
    { code: 'EF_EINVAL', message: /^options/ });
});

test('get, unread, markRead and markAllRead reject bad owners and ids', async (t) => {
  const store = open(tmpStoreDir(t));
  t.after(() => store.close());
  for (const owner of [undefined, 5, '', 'a\u0001', 'a\0']) {
    await assert.rejects(store.get(owner, 'r'), { code: 'EF_EINVAL', message: /^owner/ });
    await assert.rejects(store.unread(owner), { code: 'EF_EINVAL', message: /^owner/ });
    await assert.rejects(store.markRead(owner, 'r'), { code: 'EF_EINVAL', message: /^owner/ });
    await assert.rejects(store.markAllRead(owner), { code: 'EF_EINVAL', message: /^owner/ });
  }
  for (const rid of [undefined, 5, '', 'r\u0001', 'r\0']) {
    await assert.rejects(store.get('o', rid), { code: 'EF_EINVAL', message: /^reservationId:/ });
    await assert.rejects(store.markRead('o', rid), { code: 'EF_EINVAL', message: /^reservationId:/ });
  }
});

test('open throws EF_EINVAL at once for bad options', () => {
  for (const [options, field] of [
    [{ feedCap: 0 }, 'feedCap'], [{ feedCap: -1 }, 'feedCap'], [{ feedCap: '5' }, 'feedCap'],
    [{ feedTtlMs: -5 }, 'feedTtlMs'], [{ ipRetentionMs: 1.5 }, 'ipRetentionMs'],
    [{ noSync: 'yes' }, 'noSync'], [{ groupCommit: 1 }, 'groupCommit'], ['fast', 'options'],
  ]) {
    assert.throws(() => open('/tmp/never-made', options),
      { code: 'EF_EINVAL', message: new RegExp(`^${field}`) });
  }
  for (const dir of [undefined, 42, '', 'a\0b']) {
    assert.throws(() => open(dir), { code: 'EF_EINVAL', message: /^dir/ });
  }
});

test('a store that cannot be opened rejects every call with the open error', async (t) => {
  const file = `${tmpStoreDir(t)}-file`;
  require('node:fs').writeFileSync(file, 'not a directory');
  const store = open(file);
  await assert.rejects(store.ready, (e) => typeof e.code === 'string' && e.code.startsWith('EF_E'));
  await assert.rejects(store.finalize(good), (e) => e.code.startsWith('EF_E') && e.message.length > 0);
  await store.close();
});
