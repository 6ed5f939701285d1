#!/usr/bin/env node
// The package's install step: build libedgefeed.a from this repository with
// meson, then the addon against it with node-gyp and this machine's own Node
// headers. Nothing is downloaded: node-gyp is given --nodedir, so it never
// fetches a header tarball, and a machine without headers fails here with a
// message instead.
//
// Environment:
//   EDGEFEED_BUILD_DIR  a meson build directory of this repository to use
//                       (default: <repo>/build-node, configured without the
//                       tests and benchmarks when it does not exist yet)
//   EDGEFEED_JOBS       parallel compile jobs (default 2)
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { libPaths } = require('./paths.js');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) {
    throw new Error(`edgefeed: cannot run ${cmd}: ${r.error.message}`);
  }
  if (r.status !== 0) {
    throw new Error(`edgefeed: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
  }
}

// The prefix this node was installed under holds its headers
// (<prefix>/include/node), as node-gyp's --nodedir expects them.
function nodeDir() {
  const dir = path.resolve(path.dirname(process.execPath), '..');
  for (const f of ['node_api.h', 'common.gypi']) {
    if (!fs.existsSync(path.join(dir, 'include', 'node', f))) {
      throw new Error(`edgefeed: no Node.js headers at ${dir}/include/node ` +
        `(missing ${f}); install them (Debian: libnode-dev), ` +
        'they are never downloaded');
    }
  }
  return dir;
}

function nodeGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // installed as a dependency without our devDependencies: npm's own
    if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
    throw new Error('edgefeed: node-gyp not found (npm install in bindings/node installs it)');
  }
}

function main() {
  const p = libPaths();
  const jobs = process.env.EDGEFEED_JOBS || '2';
  if (!fs.existsSync(path.join(p.buildDir, 'build.ninja'))) {
    run('meson', ['setup', p.buildDir, '-Dtests=false', '-Dbench=false'],
      { cwd: p.repo });
  }
  run('ninja', ['-C', p.buildDir, '-j', jobs, 'libedgefeed.a']);
  run(process.execPath, [nodeGyp(), 'rebuild', `--nodedir=${nodeDir()}`,
    `--jobs=${jobs}`], { cwd: path.resolve(__dirname, '..') });
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
