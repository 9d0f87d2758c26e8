/**
 * Password hashes: scrypt (RFC 7914) through Node's crypto.scrypt, stored as
 *
 *   scrypt$<N>$<r>$<p>$<salt, base64>$<derived key, base64>
 *
 * so the cost parameters travel with each hash and can be raised later without invalidating old
 * ones. Defaults N = 2^13, r = 8, p = 10, 16-byte salt, 32-byte key: one of the equivalent scrypt
 * settings the OWASP Password Storage Cheat Sheet lists (N = 2^17, r = 8, p = 1 costs 128 MiB per
 * hash; N = 2^13 with p = 10 does the same work in 8 MiB, since OpenSSL runs the p lanes one after
 * another). Memory is what a gateway has least of, and at most HASH_CONCURRENCY hashes run at once
 * (a login burst waits its turn instead of taking 8 MiB and a CPU each): docs/local-hmi.md
 * "Measured". The login rate limit caps guessing online. Comparison is constant-time. A hash for
 * the configuration: docs/local-hmi.md "Setting a password hash".
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 8192, r: 8, p: 10 };
/** Hashes computed at once: the gateway's two cores; more logins queue. */
export const HASH_CONCURRENCY = 2;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

let running = 0;
let mostRunning = 0;
const waiting: Array<() => void> = [];

/** Hashes running and queued now, and the most that ever ran at once (tests, health). */
export function hashLoad(): { running: number; waiting: number; mostRunning: number } {
  return { running, waiting: waiting.length, mostRunning };
}

async function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  if (running >= HASH_CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  mostRunning = Math.max(mostRunning, running);
  try {
    return await new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Memory scrypt needs (128 * N * r + 128 * r * p bytes) plus headroom; Node's default maxmem is 32 MiB. */
function maxmem(p: ScryptParams): number {
  return 128 * p.r * (p.N + p.p) + 1024 * 1024;
}

export interface ParsedHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function parsePasswordHash(s: string): ParsedHash | undefined {
  const parts = s.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  // Bounds: N a power of two from 2^10 to 2^20, r 1..32, p 1..16 (a typo must not make a login take minutes).
  if (!Number.isInteger(N) || N < 1024 || N > 1 << 20 || (N & (N - 1)) !== 0) return undefined;
  if (!Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return undefined;
  const [salt, key] = [parts[4] ?? '', parts[5] ?? ''];
  if (!B64.test(salt) || !B64.test(key)) return undefined;
  const saltBuf = Buffer.from(salt, 'base64');
  const keyBuf = Buffer.from(key, 'base64');
  if (saltBuf.length < 8 || keyBuf.length < 16 || keyBuf.length > 128) return undefined;
  return { N, r, p, salt: saltBuf, key: keyBuf };
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, { ...params, maxmem: maxmem(params) });
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parsePasswordHash(stored);
  if (!h) return false;
  const key = await scrypt(password, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: maxmem(h) });
  return timingSafeEqual(key, h.key);
}

/**
 * A hash no password matches, checked against when the user does not exist, so a login for an
 * unknown name costs the same time as one for a known name (no user enumeration by timing).
 */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}

/** A random password for the first start: 18 bytes, base64url (24 characters). */
export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}
