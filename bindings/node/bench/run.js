#!/usr/bin/env node
'use strict';
// edgefeed through Node against lmdb (lmdb-js) and better-sqlite3: the
// same finalize transaction, durable and not, from 1 and 8 processes, and
// the same newest-50 page. Prints a markdown table and writes the numbers
// as JSON. Every throughput run is checked: the store holds exactly the
// entries its finalizations acknowledged as created.
//
//   cd bindings/node/bench && npm install && node run.js [options]
//     --seconds S        length of each throughput run (default 3)
//     --procs 1,8        process counts
//     --window W         calls in flight per process for the async
//                        systems (default 16; better-sqlite3 is
//                        synchronous: one at a time whatever W says)
//     --systems a,b      of edgefeed,lmdb,sqlite; NAME@N runs NAME with
//                        UV_THREADPOOL_SIZE=N (default
//                        edgefeed,edgefeed@16,lmdb,sqlite: edgefeed's
//                        calls, and so its group commits, are as wide
//                        as the pool)
//     --reads N          timed page reads (default 2000, after 200 more)
//     --json FILE        where to write the JSON (default
//                        results/node-bench-<time>.json)
// Otherwise UV_THREADPOOL_SIZE, if set, passes on to every process (libuv's
// default is 4).

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function args() {
  const a = { seconds: 3, procs: [1, 8], window: 16, systems: ['edgefeed', 'edgefeed@16', 'lmdb', 'sqlite'],
    reads: 2000, json: null };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i].replace(/^--/, ''), argv[i + 1]];
    if (v === undefined || !(k in a)) {
      console.error(`usage: run.js [--seconds S] [--procs 1,8] [--window W] ` +
        `[--systems edgefeed,lmdb,sqlite] [--reads N] [--json FILE]`);
      process.exit(2);
    }
    if (k === 'procs') a.procs = v.split(',').map(Number);
    else if (k === 'systems') a.systems = v.split(',');
    else if (k === 'json') a.json = v;
    else a[k] = Number(v);
  }
  return a;
}

// Fork one worker per job; resolve with their results once all of them
// reported ready and were told to go together (finalize), or finished.
function runJobs(jobs) {
  const children = jobs.map((job) => {
    const [system, pool] = job.system.split('@');
    const env = pool ? { ...process.env, UV_THREADPOOL_SIZE: pool } : process.env;
    return fork(path.join(__dirname, 'worker.js'), [JSON.stringify({ ...job, system })], { env });
  });
  let ready = 0;
  return Promise.all(children.map((c) => new Promise((resolve, reject) => {
    // the result may arrive after the exit is seen: wait for both
    let result = null;
    let exited = false;
    c.on('message', (m) => {
      if (m.ready && ++ready === children.length) children.forEach((k) => k.send('go'));
      if (m.result) {
        result = m.result;
        if (exited) resolve(result);
      }
    });
    c.on('exit', (code) => {
      exited = true;
      if (code !== 0) reject(new Error(`bench worker exited ${code}`));
      else if (result) resolve(result);
      else setTimeout(() => reject(new Error('bench worker exited without a result')), 5000);
    });
  })));
}

function freshDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'edgefeed-node-bench-'));
}

async function throughput(system, durable, procs, a) {
  const dir = freshDir();
  try {
    await runJobs([{ mode: 'count', system, dir, durable }]); // creates the store
    const jobs = Array.from({ length: procs }, (_, id) => ({ mode: 'finalize', system, dir,
      durable, seconds: a.seconds, window: a.window, id }));
    const results = await runJobs(jobs);
    const created = results.reduce((s, r) => s + r.created, 0);
    const seconds = Math.max(...results.map((r) => r.seconds));
    const [{ entries }] = await runJobs([{ mode: 'count', system, dir, durable }]);
    if (entries !== created) {
      throw new Error(`${system}: ${created} acknowledged, ${entries} stored`);
    }
    return { created, seconds, perSecond: created / seconds };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function pageLatency(system, a) {
  const dir = freshDir();
  try {
    const [r] = await runJobs([{ mode: 'page', system, dir, durable: false, id: 0,
      seed: 200, warmup: 200, reads: a.reads }]);
    return r;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');

// How fast this disk syncs right now (4 KiB written and fdatasync'd in a
// loop for a second): durable results are bound by it, and on a shared
// machine it changes from minute to minute.
function syncsPerSecond() {
  const dir = freshDir();
  const fd = fs.openSync(path.join(dir, 'probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  let n = 0;
  const end = performance.now() + 1000;
  try {
    while (performance.now() < end) {
      fs.writeSync(fd, block, 0, block.length, 0);
      fs.fdatasyncSync(fd);
      n++;
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return n;
}

async function main() {
  const a = args();
  const out = { when: new Date().toISOString(), node: process.version, cpus: os.cpus().length,
    cpu: os.cpus()[0].model, threadpool: process.env.UV_THREADPOOL_SIZE || '4',
    load: os.loadavg(), syncsPerSecond: syncsPerSecond(), options: a,
    results: {} };
  console.error(`load ${out.load.map((l) => l.toFixed(1)).join(' ')}, ` +
    `fdatasync ${out.syncsPerSecond}/s`);
  for (const system of a.systems) {
    const r = { throughput: {} };
    for (const durable of [true, false]) {
      for (const procs of a.procs) {
        const key = `${durable ? 'durable' : 'nosync'}-${procs}`;
        r.throughput[key] = await throughput(system, durable, procs, a);
        console.error(`${system} ${key}: ${fmt(r.throughput[key].perSecond)}/s`);
      }
    }
    r.page = await pageLatency(system, a);
    console.error(`${system} page: p50 ${r.page.p50.toFixed(1)} us, p99 ${r.page.p99.toFixed(1)} us`);
    out.results[system] = r;
  }
  const cols = [];
  for (const d of ['durable', 'nosync']) for (const p of a.procs) cols.push(`${d}-${p}`);
  const lines = [
    `| system | ${cols.map((c) => `${c.replace('-', ', ')} proc finalize/s`).join(' | ')} | page p50 us | page p99 us |`,
    `|---|${cols.map(() => '---:').join('|')}|---:|---:|`,
  ];
  for (const [system, r] of Object.entries(out.results)) {
    lines.push(`| ${system} | ${cols.map((c) => fmt(r.throughput[c].perSecond)).join(' | ')} | ` +
      `${r.page.p50.toFixed(1)} | ${r.page.p99.toFixed(1)} |`);
  }
  out.loadAfter = os.loadavg();
  out.syncsPerSecondAfter = syncsPerSecond();
  lines.push('', `load ${out.load[0].toFixed(1)} before, ${out.loadAfter[0].toFixed(1)} after; ` +
    `fdatasync ${out.syncsPerSecond}/s before, ${out.syncsPerSecondAfter}/s after`);
  console.log(lines.join('\n'));
  const file = a.json || path.join(__dirname, 'results',
    `node-bench-${out.when.replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.error(`wrote ${file}`);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
