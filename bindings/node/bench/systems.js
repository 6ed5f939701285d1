'use strict';
// The three systems of the benchmark behind one interface, each doing the
// same finalize transaction (idempotent insert of the entry, its
// uniqueness index and its unread marker, in one transaction) and the same
// newest-50 page (entries newest first with their unread flag, payload
// parsed):
//   edgefeed  this package (the C library on libuv's thread pool)
//   lmdb      lmdb-js: edgefeed's key schema in one LMDB database, written
//             in its batched async transactions (transaction() with a get
//             of the index key as the if-not-exists check). Its default
//             overlappingSync resolves a write at commit and syncs after:
//             durable, each finalize also awaits db.flushed (its README's
//             way to know a write is on disk) before it counts

//   sqlite    better-sqlite3: INSERT OR IGNORE into a WITHOUT ROWID table
//             keyed (owner, reservation), an index for the page order, an
//             unread table; WAL, synchronous=FULL durable, OFF otherwise
//
// open(dir, { durable }) -> { finalize(r) -> Promise<'created'|'duplicate'>,
//   page(owner) -> Promise<entries>, count() -> Promise<entries stored>,
//   close() }. A receive r is { owner, reservationId, createdMs, ip,
// payload } with payload a JSON text.

const path = require('node:path');

const CREATED_MAX = 9999999999999;
const sortKey = (ms) => String(CREATED_MAX - ms).padStart(13, '0');
const canon = (owner) => owner.trim().toLowerCase();

function openEdgefeed(dir, { durable }) {
  const { open } = require('..');
  // feedCap high enough that no run trims: the peers keep everything
  const store = open(dir, { groupCommit: true, noSync: !durable, feedCap: 100000 });
  return {
    ready: store.ready,
    async finalize(r) {
      const res = await store.finalize({ owner: r.owner, reservationId: r.reservationId,
        createdAt: r.createdMs, ip: r.ip, payload: r.payload });
      return res.status;
    },
    async page(owner) {
      return (await store.page(owner, { limit: 50 })).entries;
    },
    async count() {
      return (await store.check()).entries;
    },
    close: () => store.close(),
  };
}

function openLmdb(dir, { durable }) {
  const { open } = require('lmdb');
  const db = open({ path: path.join(dir, 'lmdb'), noSync: !durable, compression: false });
  return {
    ready: Promise.resolve(),
    async finalize(r) {
      const owner = canon(r.owner);
      const sort = sortKey(r.createdMs);
      const status = await db.transaction(() => {
        const index = `receiveIndex:${owner}:${r.reservationId}`;
        if (db.get(index) !== undefined) return 'duplicate';
        db.put(`recentReceive:${owner}:${sort}:${r.reservationId}`,
          { reservationId: r.reservationId, createdMs: r.createdMs, ip: r.ip, payload: r.payload });
        db.put(index, sort);
        db.put(`unread:${owner}:${r.reservationId}`, sort);
        return 'created';
      });
      if (durable) await db.flushed;
      return status;
    },
    async page(owner) {
      const o = canon(owner);
      const entries = [];
      for (const { value } of db.getRange({ start: `recentReceive:${o}:`,
        end: `recentReceive:${o};`, limit: 50 })) {
        entries.push({ reservationId: value.reservationId, createdMs: value.createdMs,
          ip: value.ip, unread: db.get(`unread:${o}:${value.reservationId}`) !== undefined,
          payload: JSON.parse(value.payload) });
      }
      return entries;
    },
    async count() {
      return db.getKeysCount({ start: 'recentReceive:', end: 'recentReceive;' });
    },
    close: () => db.close(),
  };
}

function openSqlite(dir, { durable }) {
  const Database = require('better-sqlite3');
  const db = new Database(path.join(dir, 'feed.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${durable ? 'FULL' : 'OFF'}`);
  db.pragma('busy_timeout = 60000');
  db.exec(`
    CREATE TABLE IF NOT EXISTS entry (owner TEXT NOT NULL, rid TEXT NOT NULL,
      created_ms INTEGER NOT NULL, ip TEXT, payload TEXT,
      PRIMARY KEY (owner, rid)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS entry_newest ON entry (owner, created_ms DESC, rid);
    CREATE TABLE IF NOT EXISTS unread (owner TEXT NOT NULL, rid TEXT NOT NULL,
      PRIMARY KEY (owner, rid)) WITHOUT ROWID;`);
  const insert = db.prepare('INSERT OR IGNORE INTO entry VALUES (?, ?, ?, ?, ?)');
  const mark = db.prepare('INSERT OR IGNORE INTO unread VALUES (?, ?)');
  const txn = db.transaction((r, owner) => {
    if (insert.run(owner, r.reservationId, r.createdMs, r.ip, r.payload).changes === 0) {
      return 'duplicate';
    }
    mark.run(owner, r.reservationId);
    return 'created';
  });
  const page = db.prepare(`SELECT e.rid, e.created_ms, e.ip, e.payload,
      u.rid IS NOT NULL AS unread
    FROM entry e LEFT JOIN unread u ON u.owner = e.owner AND u.rid = e.rid
    WHERE e.owner = ? ORDER BY e.created_ms DESC, e.rid LIMIT 50`);
  const count = db.prepare('SELECT count(*) AS n FROM entry');
  return {
    ready: Promise.resolve(),
    // IMMEDIATE: take the write lock at BEGIN, so that processes queue on
    // busy_timeout instead of failing to upgrade a read lock
    async finalize(r) { return txn.immediate(r, canon(r.owner)); },
    async page(owner) {
      return page.all(canon(owner)).map((row) => ({ reservationId: row.rid,
        createdMs: row.created_ms, ip: row.ip, unread: row.unread === 1,
        payload: JSON.parse(row.payload) }));
    },
    async count() { return count.get().n; },
    close: () => db.close(),
  };
}

const systems = { edgefeed: openEdgefeed, lmdb: openLmdb, sqlite: openSqlite };

module.exports = { systems };
