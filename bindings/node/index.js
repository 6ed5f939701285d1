'use strict';
// edgefeed: each owner's recent-receives feed in an LMDB store, from Node.js.
//
// This file is the API: it checks and converts every argument (a bad one
// rejects with code 'EF_EINVAL' and a message naming the field), then hands
// plain strings and numbers to the native Store (src/), whose calls run on
// libuv's thread pool. The library itself checks everything again and
// gives its own detail for what only it can judge (an owner too long once
// escaped, a bad IP, a payload that is not a JSON object).

const native = require('./build/Release/edgefeed.node');

const { limits, flags: FLAGS, codes } = native;
const codeNames = Object.fromEntries(Object.entries(codes).map(([k, v]) => [v, k]));

function einval(message) {
  const e = new Error(message);
  e.code = 'EF_EINVAL';
  e.errno = -1;
  return e;
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v).slice(0, 40)}`;
}

// A string the library can take as it is: C strings end at NUL, and a
// lone surrogate would become U+FFFD on its way to UTF-8, silently making
// another name of it.
function text(field, v) {
  if (typeof v !== 'string') throw einval(`${field}: must be a string, got ${describe(v)}`);
  if (v.includes('\0')) throw einval(`${field}: contains a NUL character`);
  if (!v.isWellFormed()) throw einval(`${field}: contains a lone UTF-16 surrogate (not valid Unicode)`);
  return v;
}

function optText(field, v) {
  return v === undefined || v === null ? undefined : text(field, v);
}

function msField(field, v, min) {
  if (!Number.isSafeInteger(v) || v < min || v > limits.createdMax) {
    throw einval(`${field}: must be an integer number of milliseconds in ` +
      `[${min}, ${limits.createdMax}], got ${describe(v)}`);
  }
  return v;
}

// createdAt: epoch milliseconds, a Date, or text (epoch milliseconds or
// ISO-8601, parsed by the library); absent: now. Text goes to the native
// side as it is, a number as a number.
function created(v) {
  if (v === undefined || v === null) return 0;
  if (v instanceof Date) {
    const t = v.getTime();
    if (Number.isNaN(t)) throw einval('createdAt: an invalid Date');
    return msField('createdAt', t, 1);
  }
  if (typeof v === 'number') return msField('createdAt', v, 1);
  if (typeof v === 'string') return text('createdAt', v);
  throw einval(`createdAt: must be milliseconds, a Date or ISO-8601 text, got ${describe(v)}`);
}

// payload: an object (serialized here) or JSON text of one (checked by the
// library); absent: none.
function payload(v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return text('payload', v);
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw einval(`payload: must be an object or the JSON text of one, got ${describe(v)}`);
  }
  let json;
  try {
    json = JSON.stringify(v);
  } catch (e) {
    throw einval(`payload: cannot be serialized as JSON: ${e.message}`);
  }
  if (typeof json !== 'string') throw einval('payload: cannot be serialized as JSON');
  return text('payload', json);
}

function record(v, field) {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw einval(`${field}: must be an object, got ${describe(v)}`);
  }
  return v;
}

// finalize, page and get answer with JSON text made on the pool thread
// (one JSON.parse here costs less than building each entry through
// Node-API); payloads are JSON objects inside it, as the library keeps them.
// An error of the library for one receive of a batch, shaped as the
// native side shapes the others (code: the C name, errno, the detail).
function libraryError(errno, detail) {
  const e = new Error(detail);
  e.code = codeNames[errno] ?? `EF_${errno}`;
  e.errno = errno;
  return e;
}

function parseResult(json) {
  try {
    return JSON.parse(json);
  } catch (e) {
    const err = new Error(`a record of the store does not decode: ${e.message}`);
    err.code = 'EF_ECORRUPT';
    err.errno = -4;
    throw err;
  }
}

function openConfig(options) {
  const o = record(options, 'options');
  const cfg = { feedCap: 0, feedTtlMs: 0, ipRetentionMs: 0, flags: 0 };
  if (o.feedCap !== undefined) {
    if (!Number.isInteger(o.feedCap) || o.feedCap < 1 || o.feedCap > 0xffffffff) {
      throw einval(`feedCap: must be an integer in [1, 4294967295], got ${describe(o.feedCap)}`);
    }
    cfg.feedCap = o.feedCap;
  }
  for (const k of ['feedTtlMs', 'ipRetentionMs']) {
    if (o[k] === undefined) continue;
    if (!Number.isSafeInteger(o[k]) || o[k] < 1) {
      throw einval(`${k}: must be a positive integer number of milliseconds, got ${describe(o[k])}`);
    }
    cfg[k] = o[k];
  }
  for (const k of ['groupCommit', 'noSync', 'readOnly', 'noCreate', 'noWait']) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== 'boolean') throw einval(`${k}: must be a boolean, got ${describe(o[k])}`);
    if (k === 'groupCommit') {
      // the library's default: true is the same handle as no option (so
      // that threads sharing a store agree), false turns it off
      if (!o[k]) cfg.flags |= FLAGS.noGroupCommit;
    } else if (o[k]) {
      cfg.flags |= FLAGS[k];
    }
  }
  return cfg;
}

// A store directory opened by this process. Every method returns a
// promise; the work runs on libuv's thread pool.
class Store {
  #native;
  #closing = null;
  #batch = null; // finalizations of this turn, not yet sent

  constructor(dir, options) {
    text('dir', dir);
    if (dir === '') throw einval('dir: must not be empty');
    const cfg = openConfig(options);
    this.#native = new native.Store(dir, cfg.feedCap, cfg.feedTtlMs,
      cfg.ipRetentionMs, cfg.flags);
    // Opened at once on the pool; an error shows on `ready` and on every
    // call. Marked handled so that a store nobody awaits does not end the
    // process with an unhandled rejection.
    this.ready = this.#native.open().then(() => this);
    this.ready.catch(() => {});
  }

  // The finalizations of one turn of the event loop go to the library
  // together, at its end (a microtask): one call on the pool, one
  // transaction and one sync for all of them (ef_finalize_batch), each
  // answered with its own result. A lone one goes alone, as before.
  async finalize(receive) {
    const r = record(receive, 'receive');
    const args = [text('owner', r.owner), text('reservationId', r.reservationId),
      created(r.createdAt), optText('ip', r.ip) ?? null, payload(r.payload) ?? null];
    return new Promise((resolve, reject) => {
      if (this.#batch === null) {
        this.#batch = [];
        queueMicrotask(() => this.#flush());
      }
      this.#batch.push({ args, resolve, reject });
      if (this.#batch.length >= limits.batchMax) this.#flush();
    });
  }

  #flush() {
    const b = this.#batch;
    this.#batch = null;
    if (b === null || b.length === 0) return;
    if (b.length === 1) {
      const [{ args, resolve, reject }] = b;
      this.#native.finalize(...args).then((json) => {
        try { resolve(parseResult(json)); } catch (e) { reject(e); }
      }, reject);
      return;
    }
    this.#native.finalizeBatch(b.map((x) => x.args)).then((json) => {
      let results;
      try {
        results = parseResult(json);
      } catch (e) {
        for (const x of b) x.reject(e);
        return;
      }
      b.forEach((x, i) => {
        const res = results[i];
        if (res.error) x.reject(libraryError(res.error.errno, res.error.detail));
        else x.resolve(res);
      });
    }, (e) => { for (const x of b) x.reject(e); });
  }

  async page(owner, options) {
    text('owner', owner);
    const o = record(options, 'options');
    let limit = limits.pageLimitDefault;
    if (o.limit !== undefined && o.limit !== null) {
      limit = o.limit;
      if (!Number.isInteger(limit) || limit < 1 || limit > limits.pageLimitMax) {
        throw einval(`limit: must be an integer in [1, ${limits.pageLimitMax}], got ${describe(limit)}`);
      }
    }
    const cursor = optText('cursor', o.cursor);
    // Read at once on this thread if the library can without waiting for
    // a lock or a sync (the pool's round trip costs more than the read);
    // otherwise, and for every error, on the pool as any other call.
    const now = this.#native.pageNow(owner, limit, cursor);
    if (now !== null) return parseResult(now);
    return parseResult(await this.#native.page(owner, limit, cursor));
  }

  async get(owner, reservationId) {
    return parseResult(await this.#native.get(text('owner', owner),
      text('reservationId', reservationId)));
  }

  async unread(owner) {
    return this.#native.unread(text('owner', owner));
  }

  async markRead(owner, reservationId) {
    await this.#native.markRead(text('owner', owner),
      text('reservationId', reservationId));
  }

  async markAllRead(owner) {
    await this.#native.markAllRead(text('owner', owner));
  }

  async sweep() {
    return this.#native.sweep();
  }

  async migrate(options) {
    const o = record(options, 'options');
    let batch = 0;
    if (o.batch !== undefined) {
      if (!Number.isInteger(o.batch) || o.batch < 1 || o.batch > 0xffffffff) {
        throw einval(`batch: must be a positive integer, got ${describe(o.batch)}`);
      }
      batch = o.batch;
    }
    return this.#native.migrate(Boolean(o.dryRun), batch);
  }

  async check(options) {
    return this.#native.check(Boolean(record(options, 'options').strict));
  }

  // Closing twice is fine (the same promise); calls made after close()
  // reject with 'EF_EINVAL' "store is closed". Calls already made finish
  // first: the store is closed once the promise resolves.
  close() {
    this.#flush(); // calls of this turn go first: they were made before
    if (this.#closing === null) this.#closing = this.#native.close();
    return this.#closing;
  }
}

function open(dir, options) {
  return new Store(dir, options);
}

module.exports = { open, Store, version: native.version, limits };
