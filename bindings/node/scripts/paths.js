#!/usr/bin/env node
// Where the repository's meson build of libedgefeed is: one answer for
// scripts/build.js (which builds it) and binding.gyp (which links it).
// `node scripts/paths.js lib|include` prints one path for gyp.
'use strict';

const path = require('node:path');

function libPaths() {
  const repo = path.resolve(__dirname, '..', '..', '..');
  const buildDir = path.resolve(repo, process.env.EDGEFEED_BUILD_DIR || 'build-node');
  return {
    repo,
    buildDir,
    lib: path.join(buildDir, 'libedgefeed.a'),
    include: path.join(repo, 'include'),
  };
}

module.exports = { libPaths };

if (require.main === module) {
  const what = process.argv[2];
  const p = libPaths();
  if (!(what in p)) {
    console.error('usage: paths.js lib|include|buildDir|repo');
    process.exit(2);
  }
  process.stdout.write(p[what]);
}
