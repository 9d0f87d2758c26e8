/**
 * The web app's files (index.html, app.js, app.css, uPlot: no CDN). The built component carries them
 * inside main.js (scripts/build.js embeds components/local-hmi/web/dist), so the artifact stays one
 * flat main.js like every other component's; a folder given by DCMMS_HMI_WEB_DIR (development,
 * tests) is served instead when set.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface WebFile {
  body: Buffer;
  type: string;
}

export interface WebAssets {
  /** `rel` is the URL path without the leading slash, already decoded. */
  get(rel: string): WebFile | undefined;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentType(file: string): string {
  return TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** A path that cannot leave the web root: no `..`, no backslash, no NUL, no hidden files. */
function safeRel(rel: string): boolean {
  return !rel.split('/').some((seg) => seg === '..' || seg.startsWith('.')) && !rel.includes('\\') && !rel.includes('\0');
}

/** Files read from a folder at each request (small files; the browser caches them). */
export function dirAssets(root: string): WebAssets {
  const base = path.resolve(root);
  return {
    get(rel) {
      if (!safeRel(rel)) return undefined;
      const file = path.resolve(base, rel);
      if (file !== base && !file.startsWith(base + path.sep)) return undefined;
      try {
        const st = fs.statSync(file);
        if (!st.isFile()) return undefined;
        return { body: fs.readFileSync(file), type: contentType(file) };
      } catch {
        return undefined;
      }
    },
  };
}

/** Files carried in the bundle: relative path -> base64 content. */
export function embeddedAssets(files: Readonly<Record<string, string>>): WebAssets {
  const decoded = new Map<string, WebFile>();
  for (const [rel, b64] of Object.entries(files)) decoded.set(rel, { body: Buffer.from(b64, 'base64'), type: contentType(rel) });
  return { get: (rel) => (safeRel(rel) ? decoded.get(rel) : undefined) };
}

/** When there is no web app (a build without it): a page saying so, under the same CSP. */
export const NO_WEB_APP: WebAssets = {
  get(rel) {
    if (rel !== 'index.html') return undefined;
    return { body: Buffer.from('<!doctype html><title>dCMMS LocalHmi</title><p>The web app is not part of this build; the API is at /api.</p>\n'), type: TYPES['.html']! };
  },
};
