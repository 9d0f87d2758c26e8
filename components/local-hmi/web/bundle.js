// @ts-check
/**
 * Bundles the LocalHmi web app: app.ts with uPlot (JS and CSS) into app.js and app.css, plus
 * index.html. Everything the browser loads comes from the gateway: no CDN, no inline script or
 * style (the server's CSP allows 'self' only).
 *
 * The built component carries the files inside its main.js (one flat artifact like every other
 * component's): scripts/build.js bundles components with `webAssetsPlugin`, which answers the
 * import of `hmi-web-assets` (typed in assets.d.ts) with { '<file>': '<base64>' } of a fresh
 * bundle written to web/dist. `node components/local-hmi/web/bundle.js [DIR]` writes the files to
 * DIR (default web/dist) for serving from a folder (DCMMS_HMI_WEB_DIR) while working on the pages.
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
const MODULE = 'hmi-web-assets';

/**
 * esbuild plugin: `import files from 'hmi-web-assets'` -> the freshly bundled web app as
 * { 'index.html': '<base64>', 'app.js': ..., 'app.css': ... }. Other bundles never import it.
 * @type {import('esbuild').Plugin}
 */
const webAssetsPlugin = {
  name: 'hmi-web-assets',
  setup(build) {
    build.onResolve({ filter: new RegExp(`^${MODULE}$`) }, () => ({ path: MODULE, namespace: MODULE }));
    build.onLoad({ filter: /.*/, namespace: MODULE }, async () => {
      const files = await bundleWeb(DIST);
      /** @type {Record<string, string>} */
      const out = {};
      for (const f of files) out[f] = fs.readFileSync(path.join(DIST, f)).toString('base64');
      return { contents: `module.exports = ${JSON.stringify(out)};`, loader: 'js', watchFiles: [] };
    });
  },
};

module.exports = { bundleWeb, webAssetsPlugin, WEB_FILES, DIST };

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
