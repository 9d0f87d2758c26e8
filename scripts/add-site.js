#!/usr/bin/env node
// @ts-check
/**
 * Adds a site to cdk/config/sites.json (sites are configuration, not code; docs/cdk.md).
 *
 *   node scripts/add-site.js --site plant-c --fleet solar-eu --time-zone Europe/Berlin \
 *     [--description "..."] [--devices devices.json] [--thresholds thresholds.json]
 *
 * --devices is a JSON array of device objects (each with an assetId); --thresholds a JSON object.
 * The full validation runs at synth (cdk/lib/config.ts); this script checks what it can so the
 * file is not left half-valid, then prints the next commands.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SITES = path.join(ROOT, 'cdk', 'config', 'sites.json');
const FLEETS = path.join(ROOT, 'cdk', 'config', 'fleets.json');
// Same patterns as cdk/lib/config.ts (no `_`: it separates fleet, site and serial in thing names).
const SITE_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,47}$/;

function fail(msg) {
  process.stderr.write(`add-site: ${msg}\n`);
  process.exit(1);
}

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--')) fail(`unexpected argument ${k}`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) fail(`${k} needs a value`);
    out[k.slice(2)] = v;
    i++;
  }
  return out;
}

function readJson(file, what) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return fail(`${what} ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const a = args(process.argv.slice(2));
const known = new Set(['site', 'fleet', 'time-zone', 'description', 'devices', 'thresholds']);
for (const k of Object.keys(a)) if (!known.has(k)) fail(`unknown option --${k}`);
if (!a.site || !a.fleet || !a['time-zone']) fail('usage: node scripts/add-site.js --site <id> --fleet <fleet> --time-zone <IANA zone> [--description text] [--devices file.json] [--thresholds file.json]');
if (!SITE_ID.test(a.site)) fail(`site id ${a.site} must match ${SITE_ID.source}`);
try {
  new Intl.DateTimeFormat('en', { timeZone: a['time-zone'] });
} catch {
  fail(`time zone ${a['time-zone']} is not an IANA zone (e.g. Europe/Madrid)`);
}
const fleets = readJson(FLEETS, 'fleets file');
if (!fleets.fleets || !(a.fleet in fleets.fleets)) fail(`fleet ${a.fleet} is not in ${path.relative(ROOT, FLEETS)} (${Object.keys(fleets.fleets ?? {}).join(', ')})`);
const doc = readJson(SITES, 'sites file');
if (!Array.isArray(doc.sites)) fail(`${SITES}: expected {"sites": [...]}`);
if (doc.sites.some((s) => s.siteId === a.site)) fail(`site ${a.site} already exists`);
const devices = a.devices ? readJson(path.resolve(a.devices), 'devices file') : [];
if (!Array.isArray(devices) || devices.some((d) => !d || typeof d.assetId !== 'string')) fail('--devices must be a JSON array of objects with an assetId');
const thresholds = a.thresholds ? readJson(path.resolve(a.thresholds), 'thresholds file') : {};
if (typeof thresholds !== 'object' || thresholds === null || Array.isArray(thresholds)) fail('--thresholds must be a JSON object');

const site = { siteId: a.site, fleet: a.fleet, ...(a.description ? { description: a.description } : {}), timeZone: a['time-zone'], devices, thresholds };
doc.sites.push(site);
fs.writeFileSync(SITES, `${JSON.stringify(doc, null, 2)}\n`);
process.stdout.write(
  `added site ${a.site} to fleet ${a.fleet} in ${path.relative(ROOT, SITES)}\n` +
    `next: npx cdk diff && npx cdk deploy\n` +
    `gateways of this site provision with SiteId=${a.site}, ThingName=dcmms_${a.fleet}_${a.site}_<serial> and deviceId=dcmms-claim_${a.fleet}_<serial> (docs/cdk.md, First deployment)\n`,
);
