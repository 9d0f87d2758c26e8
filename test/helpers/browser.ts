/// <reference lib="dom" />
/**
 * Debian's Chromium (/usr/bin/chromium, `npm run test:peers` installs it) driven by playwright-core:
 * never playwright's own browser download. Headless, no sandbox (CI containers run as root), none
 * of Chromium's own network traffic (updates, sync, QUIC probes) so the test sees only the HMI's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.DCMMS_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

export function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: run \`npm run test:peers\` (Debian's chromium package)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** A landscape tablet (1024x768) that accepts the gateway's self-signed certificate. */
export function tabletContext(browser: Browser, viewport = { width: 1024, height: 768 }): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'UTC' });
}

/** Collects what the page says went wrong: uncaught errors and CSP violations (console errors). */
export function watchPage(page: Page): { errors: string[]; cspViolations: string[] } {
  const errors: string[] = [];
  const cspViolations: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  return { errors, cspViolations };
}

/**
 * The line LocalHmi writes once at first start, with the random admin password (docs/local-hmi.md
 * "First start"). Returns undefined until it is in the log.
 */
export function firstStartCredential(logFile: string): { username: string; password: string; url: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('first start: admin credential created')) continue;
    try {
      // The runtime prefixes each line of the component's stdout: `<time> [stdout] {json}`.
      const r = JSON.parse(line.slice(line.indexOf('{'))) as { username?: unknown; password?: unknown; url?: unknown };
      if (typeof r.username === 'string' && typeof r.password === 'string' && typeof r.url === 'string') return { username: r.username, password: r.password, url: r.url };
    } catch {
      // a line cut while being written: read again on the next poll
    }
  }
  return undefined;
}

/** Logs in through the login page and waits for the overview's first values. */
export async function login(page: Page, baseUrl: string, username: string, password: string): Promise<void> {
  await page.goto(baseUrl);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('main#page');
}

/**
 * docs/images/hmi-<name>.png, only when DCMMS_HMI_SCREENSHOTS=1 (so a CI run never rewrites the
 * docs). Returns whether it wrote.
 */
export async function docScreenshot(page: Page, name: string): Promise<boolean> {
  if (process.env.DCMMS_HMI_SCREENSHOTS !== '1') return false;
  const file = path.resolve(__dirname, '../../docs/images', `hmi-${name}.png`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file, fullPage: false });
  return true;
}

/**
 * What a tablet needs of the page now: every visible control (button, link, input, select,
 * summary) at least 44 x 44 CSS px (WCAG 2.5.5 target size), and nothing wider than the screen
 * (wide tables scroll inside their own box). Returns what falls short, empty when all is well.
 */
export function tabletProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll<HTMLElement>('button, a[href], input, select, summary'))) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue; // not shown
      if (r.width < 44 || r.height < 44) out.push(`${el.tagName.toLowerCase()} "${(el.textContent ?? '').trim().slice(0, 30)}" is ${Math.round(r.width)}x${Math.round(r.height)} px`);
    }
    if (document.documentElement.scrollWidth > window.innerWidth) out.push(`the page is ${document.documentElement.scrollWidth} px wide on a ${window.innerWidth} px screen`);
    return out;
  });
}
