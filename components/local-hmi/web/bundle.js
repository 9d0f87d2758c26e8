// @ts-check
/**
 * Bundles the LocalHmi web app for scripts/build.js: app.ts with uPlot (JS and CSS) into app.js
 * and app.css, plus index.html, in `outDir` (the component's artifact folder `web/`). Everything
 * the browser loads comes from the gateway: no CDN, no inline script or style (the server's CSP).
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

module.exports = { bundleWeb, WEB_FILES };
