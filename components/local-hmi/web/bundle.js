// @ts-check
/**
 * Bundles the LocalHmi web app: app.ts with uPlot (JS and CSS) into app.js and app.css, plus
 * index.html. Everything the browser loads comes from the gateway: no CDN, no inline script or
 * style (the server's CSP allows 'self' only).
 *
 * The built component carries the files inside its main.js (one flat artifact like every other
 * component's): scripts/build.js bundles components with `hmiWebPlugin`, which replaces LocalHmi's
 * `./web-embedded` module (an empty stand-in for tests and the type check) with
 * `WEB_FILES = { '<file>': '<base64>' }` of a fresh bundle written to web/dist.
 * `node components/local-hmi/web/bundle.js [DIR]` writes the files to DIR (default web/dist) for
 * serving from a folder (DCMMS_HMI_WEB_DIR) while working on the pages.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

/** The files the server serves; the build checks each was produced. */
const WEB_FILES = ['index.html', 'app.js', 'app.css'];

/**
 * @param {string} outDir
 * @returns {Promise<string[]>} the files written, relative to outDir
 */
async function bundleWeb(outDir) {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: { app: path.join(__dirname, 'app.ts') },
    bundle: true,
    platform: 'browser',
    // Tablets' browsers of the last few years; no transpiling of what they all have.
    target: ['chrome100', 'safari15', 'firefox100'],
    format: 'iife',
    minify: true,
    sourcemap: false,
    outdir: outDir,
    legalComments: 'none',
    logLevel: 'silent',
  });
  fs.copyFileSync(path.join(__dirname, 'index.html'), path.join(outDir, 'index.html'));
  const missing = WEB_FILES.filter((f) => !fs.existsSync(path.join(outDir, f)));
  if (missing.length) throw new Error(`web bundle: ${missing.join(', ')} not produced in ${outDir}`);
  return fs.readdirSync(outDir).sort();
}

/** Where the build writes the files it embeds (git-ignored, as every dist/). */
const DIST = path.join(__dirname, 'dist');
/** LocalHmi's stand-in module the plugin replaces (components/local-hmi/web-embedded.ts). */
const EMBEDDED = path.resolve(__dirname, '..', 'web-embedded.ts');

/**
 * esbuild plugin: LocalHmi's `import { WEB_FILES } from './web-embedded'` gets the freshly bundled
 * web app, { 'index.html': '<base64>', 'app.js': ..., 'app.css': ... }. Other bundles never import it.
 * @type {import('esbuild').Plugin}
 */
const hmiWebPlugin = {
  name: 'hmi-web',
  setup(build) {
    build.onLoad({ filter: /[\\/]web-embedded\.ts$/ }, async (args) => {
      if (path.resolve(args.path) !== EMBEDDED) return undefined;
      const files = await bundleWeb(DIST);
      /** @type {Record<string, string>} */
      const out = {};
      for (const f of files) out[f] = fs.readFileSync(path.join(DIST, f)).toString('base64');
      return { contents: `export const WEB_FILES = ${JSON.stringify(out)};`, loader: 'js' };
    });
  },
};

module.exports = { bundleWeb, hmiWebPlugin, WEB_FILES, DIST };

if (require.main === module) {
  const dir = path.resolve(process.argv[2] ?? DIST);
  bundleWeb(dir).then(
    (files) => process.stdout.write(`web app: ${files.join(', ')} in ${dir}\n`),
    (err) => {
      process.stderr.write(`web bundle failed: ${err && err.errors ? err.errors.map((/** @type {any} */ e) => e.text).join('; ') : err}\n`);
      process.exit(1);
    },
  );
}
