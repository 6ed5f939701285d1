'use strict';
// One process of the benchmark (forked by run.js; the job is argv[2], JSON).
//   finalize: open, report ready, wait for 'go', finalize unique
//             reservations for random owners with `window` calls in flight
//             for `seconds`, report the counts
//   page:     seed one owner with `seed` entries, then time `reads`
//             newest-50 pages one after another, report the latencies
//   count:    report how many entries the store holds (also creates it)

const { systems } = require('./systems.js');

const job = JSON.parse(process.argv[2]);
const OWNERS = 1000;

function receive(n) {
  const rid = `p${job.id}-${n}`;
  return {
    owner: `user${(n * 7919 + job.id * 104729) % OWNERS}@example.com`,
    reservationId: rid,
    createdMs: Date.now(),
    ip: `192.0.2.${n % 250 + 1}`,
    payload: JSON.stringify({ fileName: `report-${rid}.pdf`, size: 1000 + n,
      senderEmail: 'sender@example.org', linkId: `lnk-${rid}` }),
  };
}

function send(msg) {
  return new Promise((resolve) => process.send(msg, resolve));
}

async function finalizeJob(store) {
  await send({ ready: true });
  await new Promise((resolve) => process.once('message', resolve));
  const end = performance.now() + job.seconds * 1000;
  let n = 0;
  const counts = { created: 0, duplicate: 0 };
  async function lane() {
    while (performance.now() < end) {
      counts[await store.finalize(receive(n++))]++;
    }
  }
  const t0 = performance.now();
  await Promise.all(Array.from({ length: job.window }, lane));
  return { ...counts, seconds: (performance.now() - t0) / 1000 };
}

async function pageJob(store) {
  const owner = `user0@example.com`;
  const t0 = Date.now() - job.seed * 1000;
  for (let i = 0; i < job.seed; i++) {
    await store.finalize({ ...receive(i), owner, createdMs: t0 + i * 1000 });
  }
  const lat = [];
  for (let i = 0; i < job.warmup + job.reads; i++) {
    const t = process.hrtime.bigint();
    const entries = await store.page(owner);
    const us = Number(process.hrtime.bigint() - t) / 1000;
    if (entries.length !== 50) throw new Error(`page of ${entries.length} entries`);
    if (i >= job.warmup) lat.push(us);
  }
  lat.sort((a, b) => a - b);
  const at = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
  return { reads: lat.length, p50: at(0.5), p99: at(0.99) };
}

async function main() {
  const store = systems[job.system](job.dir, { durable: job.durable });
  await store.ready;
  let result;
  if (job.mode === 'finalize') result = await finalizeJob(store);
  else if (job.mode === 'page') result = await pageJob(store);
  else result = { entries: await store.count() };
  await store.close();
  await send({ result });
  process.exit(0);
}

main().catch((e) => {
  console.error(`bench worker ${job.system}/${job.mode}: ${e.code || ''} ${e.stack}`);
  process.exit(1);
});
