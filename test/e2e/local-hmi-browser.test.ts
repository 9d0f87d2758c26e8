/// <reference lib="dom" />
/**
 * LocalHmi in a real browser, with what ships: the built com.dcmms.edge.Site (every component,
 * greengrass-build/ recipes and bundles, the web app inside LocalHmi's main.js) deployed on the
 * local runtime against the site simulator, and Debian's Chromium driven by playwright-core over
 * HTTPS with the generated self-signed certificate. As an operator would:
 *
 *  - the first-start admin password is read from LocalHmi's log and used on the login page;
 *  - the overview shows each inverter's AC power as the simulator has it (within a poll);
 *  - every page, landscape 1024x768 and portrait 768x1024, has controls of at least 44 px and
 *    nothing wider than the screen;
 *  - a ground fault injected in the simulator is on the alarms page within 2 s (the Processor's
 *    ground_fault alarm through the bus and SSE) and is acknowledged through the dialog;
 *  - a trend of an inverter's power is drawn (uPlot canvas, non-empty series);
 *  - a curtailment sent from the control page is confirmed, LocalControl writes it, and the
 *    simulated inverter's model 123 limit reads it back;
 *  - a viewer sees no action buttons; no page breaks the CSP or throws.
 *
 * DCMMS_HMI_SCREENSHOTS=1 also writes docs/images/hmi-<page>.png (CI never sets it).
 * Needs `npm run build` first (npm test does it) and chromium (`npm run test:peers`).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { docScreenshot, firstStartCredential, launchChromium, login, tabletContext, tabletProblems, watchPage } from '../helpers/browser';
import { startNucleus, type Harness } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const PROJECT = path.resolve(__dirname, '../..');
const BUILD = path.join(PROJECT, 'greengrass-build');
const SITE_COMPONENT = 'com.dcmms.edge.Site';
const HMI = 'com.dcmms.edge.LocalHmi';
const POLL_MS = 250;

let sim: SiteSimulator;
let h: Harness;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let base: string;
let watched: ReturnType<typeof watchPage>;

const inverter = (assetId: string) => sim.state().inverters.find((i) => i.assetId === assetId)!;

async function goto(pageId: string, query = ''): Promise<void> {
  await page.evaluate((hash) => (location.hash = hash), `#/${pageId}${query}`);
  await page.waitForSelector(`main#page[data-page="${pageId}"]`);
}

beforeAll(async () => {
  for (const n of [SITE_COMPONENT, HMI]) {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${n}-${version}.yaml`))) throw new Error(`greengrass-build/ has no ${n} recipe: run \`npm run build\` (npm test does)`);
  }
  // Noon, clear sky: every inverter produces, so power, a trend and a curtailment all show.
  sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 3, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
  h = await startNucleus({ deployment: { componentUpdateTimeoutMs: 5000, configValidationTimeoutMs: 5000, deploymentTimeoutMs: 90_000, stableMs: 500 } });
  const devices = sim.deviceConfig({ pollIntervalMs: POLL_MS });
  const deployed = await h.run({
    recipeDirectoryPath: path.join(BUILD, 'recipes'),
    artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
    rootComponentsToAdd: { [SITE_COMPONENT]: version },
    configuration: {
      'com.dcmms.edge.ModbusAdapter': { merge: { ...devices }, reset: [] },
      'com.dcmms.edge.Processor': { merge: { assets: devices.devices.map((d) => d.assetId) }, reset: [] },
      // Port 0: the port the HMI got is in its first-start line; loopback only.
      [HMI]: { merge: { port: 0, bindAddress: '127.0.0.1', hostnames: ['localhost'] }, reset: [] },
    },
  });
  expect(deployed.status).toBe('SUCCEEDED');
  browser = await launchChromium();
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await h?.close();
  await sim?.close();
});

test('log in with the first-start credential from the LocalHmi log; the overview shows the plant as the simulator has it', async () => {
  const logFile = path.join(h.root, 'logs', `${HMI}.log`);
  let cred: ReturnType<typeof firstStartCredential>;
  await waitFor(() => (cred = firstStartCredential(logFile)) !== undefined, 60_000, 'the first-start credential in the LocalHmi log');
  expect(cred!.username).toBe('admin');
  // The URL names the gateway; the browser here reaches it on loopback.
  base = `https://127.0.0.1:${new URL(cred!.url).port}/`;

  context = await tabletContext(browser);
  page = await context.newPage();
  watched = watchPage(page);
  await page.goto(base);
  await docScreenshot(page, 'login');
  await login(page, base, cred!.username, cred!.password);
  await page.waitForSelector('.overview[data-ready="true"]', { timeout: 30_000 });
  expect(await page.textContent('#user')).toContain('admin (admin)');

  // Each inverter's AC power as shown is the simulator's within a poll: the page re-reads on every
  // telemetry event, so wait for a rendering close to the plant's value now.
  for (const assetId of ['INV-01', 'INV-02', 'INV-03']) {
    const cell = `#inverters tr[data-asset="${assetId}"] td[data-point="acPowerW"]`;
    await waitFor(
      async () => {
        const shown = Number(await page.getAttribute(cell, 'data-value').catch(() => null));
        const actual = inverter(assetId).acW;
        return actual > 1000 && Math.abs(shown - actual) <= Math.max(50, actual * 0.01);
      },
      10_000,
      `${assetId} AC power on the overview matching the simulator's`,
    );
  }
  await waitFor(async () => /\d/.test((await page.textContent('[data-field="irradianceWm2"] .tile-value')) ?? ''), 10_000, 'irradiance shown');
  await docScreenshot(page, 'overview');
});

test('every page is usable on a tablet: controls of at least 44 px, nothing wider than the screen, landscape and portrait', async () => {
  for (const viewport of [{ width: 1024, height: 768 }, { width: 768, height: 1024 }]) {
    await page.setViewportSize(viewport);
    for (const id of ['overview', 'alarms', 'devices', 'trends', 'control', 'health']) {
      await goto(id);
      await page.waitForFunction(() => !document.querySelector('main#page')?.textContent?.includes('Loading…'), undefined, { timeout: 10_000 });
      expect({ page: id, viewport, problems: await tabletProblems(page) }).toEqual({ page: id, viewport, problems: [] });
    }
  }
  await page.setViewportSize({ width: 1024, height: 768 });
});

test('a ground fault injected in the plant is on the alarms page within 2 s and is acknowledged through the dialog', async () => {
  await goto('alarms');
  await page.waitForSelector('.alarm-list table, .alarm-list .empty');
  const row = 'tr[data-asset="INV-02"][data-kind="ground_fault"]';
  const injected = Date.now();
  sim.injectFault({ kind: 'ground-fault', unit: 2 });
  await page.waitForSelector(row, { timeout: 10_000 });
  const shownAfterMs = Date.now() - injected;
  expect(shownAfterMs).toBeLessThan(2000);

  await page.click(`${row} button[data-action="acknowledge"]`);
  await page.fill('.dialog input[name="reason"]', 'crew on the way');
  await docScreenshot(page, 'alarms-acknowledge');
  await page.click('.dialog button[data-action="confirm"]');
  await page.waitForSelector(`${row} [data-field="acknowledged"]`, { timeout: 10_000 });
  expect(await page.textContent(`${row} [data-field="acknowledged"]`)).toMatch(/ack\. by admin.*crew on the way/);
  expect(await page.$(`${row} button[data-action="acknowledge"]`)).toBeNull();
  await docScreenshot(page, 'alarms');
});

test('devices show their communication state and SunSpec models', async () => {
  await goto('devices');
  await page.waitForSelector('article.device[data-asset="INV-01"]');
  // The models come with the adapter's device status (discovery, then its heartbeat): a device event
  // updates the card in place.
  await page.waitForFunction(() => /\b103\b/.test(document.querySelector('article.device[data-asset="INV-01"] [data-field="models"]')?.textContent ?? ''), undefined, { timeout: 15_000 });
  expect(await page.textContent('article.device[data-asset="INV-01"] .pill')).toBe('online');
  await docScreenshot(page, 'devices');
});

test('a trend of an inverter power draws on the canvas', async () => {
  await goto('trends', '?asset=INV-01&point=103.W');
  await page.waitForSelector('#chart[data-state="drawn"]', { timeout: 15_000 });
  expect(Number(await page.getAttribute('#chart', 'data-points'))).toBeGreaterThan(0);
  // The canvas has the series drawn: pixels of the line colour (#1565c0), not only axes and grid.
  const linePixels = await page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('#chart canvas')!;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]! - 0x15) < 30 && Math.abs(d[i + 1]! - 0x65) < 30 && Math.abs(d[i + 2]! - 0xc0) < 30 && d[i + 3]! > 200) n++;
    return n;
  });
  expect(linePixels).toBeGreaterThan(20);
  await docScreenshot(page, 'trends');
});

test('a curtailment from the control page is confirmed and read back on the inverter', async () => {
  await goto('control');
  const card = 'article.control-card[data-asset="INV-03"]';
  await page.click(`${card} button[data-action="curtail"]`);
  await page.fill('.dialog input[name="value"]', '40');
  await docScreenshot(page, 'control-confirm');
  await page.click('.dialog button[data-action="confirm"]');
  await page.waitForSelector(`${card} [data-field="outcome"][data-state="done"]`, { timeout: 30_000 });
  await waitFor(() => inverter('INV-03').limitEnabled && inverter('INV-03').limitPct === 40, 10_000, 'INV-03 limited to 40 % in the simulator');
  // ... and the page shows the limit the inverter reports (model 123 read back by the adapter).
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '40 %', `${card} [data-field="limit"]`, { timeout: 10_000 });
  await docScreenshot(page, 'control');
});

test('health lists the components; a viewer sees no action buttons; no CSP violation and no page error', async () => {
  await goto('health');
  await page.waitForSelector('#components tr[data-component]');
  expect(await page.$$eval('#components tr[data-component]', (rows) => rows.map((r) => r.getAttribute('data-component')))).toEqual(expect.arrayContaining([expect.stringMatching(/Processor|processor/)]));
  await docScreenshot(page, 'health');

  // An admin creates a viewer; the viewer's control and alarm pages have no buttons to act.
  const csrf = await page.evaluate(async () => ((await (await fetch('/api/session')).json()) as { csrfToken: string }).csrfToken);
  const created = await page.evaluate(
    async (token) => (await fetch('/api/users', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': token }, body: JSON.stringify({ username: 'tablet', password: 'viewer-password-123', role: 'viewer' }) })).status,
    csrf,
  );
  expect(created).toBeLessThan(300);
  const viewerContext = await tabletContext(browser, { width: 768, height: 1024 });
  try {
    const viewer = await viewerContext.newPage();
    const seen = watchPage(viewer);
    await login(viewer, base, 'tablet', 'viewer-password-123');
    await viewer.waitForSelector('.overview[data-ready="true"]');
    await viewer.evaluate(() => (location.hash = '#/control'));
    await viewer.waitForSelector('article.control-card');
    expect(await viewer.$$('article.control-card button')).toHaveLength(0);
    expect(await viewer.textContent('.readonly')).toMatch(/viewer/);
    await viewer.evaluate(() => (location.hash = '#/alarms'));
    await viewer.waitForSelector('tr[data-kind="ground_fault"]');
    expect(await viewer.$$('.alarm-list button')).toHaveLength(0);
    await docScreenshot(viewer, 'portrait-viewer');
    expect(seen.errors).toEqual([]);
    expect(seen.cspViolations).toEqual([]);
  } finally {
    await viewerContext.close();
  }
  expect(watched.errors).toEqual([]);
  expect(watched.cspViolations).toEqual([]);
});
