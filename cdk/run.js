// @ts-check
/**
 * cdk.json's app command. There is no ts-node here (and TypeScript 7 breaks it), so the app is
 * bundled with esbuild's JS API (dependencies stay external, ~0.2 s) and required.
 * The bundle goes to cdk.out/.app.js; paths are resolved from the project root, not __dirname
 * (cdk/lib/paths.ts).
 */
'use strict';
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const outfile = path.join(root, 'cdk.out', '.app.js');
esbuild.buildSync({
  entryPoints: [path.join(root, 'cdk', 'bin', 'app.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
});
require(outfile);
