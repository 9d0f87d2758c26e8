/** Types of scripts/arm64/toolchain.js (plain JavaScript, run by node before any TypeScript is built). */
export class Arm64Unavailable extends Error {}
export const NODE_VERSION: string;
export const QEMU: string;
export const QEMU_LD_PREFIX: string;
export interface Arm64Tree {
  /** The cache folder of this package-lock.json and Node version. */
  dir: string;
  /** The cross-installed node_modules (arm64 addons and packages). */
  nodeModules: string;
  betterSqlite3: string;
  serialport: string;
  /** The arm64 node binary. */
  node: string;
}
export function cacheDir(): string;
export function missingCrossTools(): string[];
export function missingQemu(): string[];
export function arm64NodeIfPresent(): string | undefined;
export function ensureArm64Node(log?: (msg: string) => void): string;
export function treeKey(): string;
export function arm64TreeIfPresent(): Arm64Tree | undefined;
export function ensureArm64Tree(log?: (msg: string) => void): Arm64Tree;
export function qemuEnv(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
/** unshare + mount of an AArch64 /proc/cpuinfo + qemu-aarch64, running `args` (the arm64 program first). */
export function qemuCommand(args: string[]): { file: string; args: string[] };
export function writeNodeWrapper(dir: string, arm64Node: string): string;
export function elfMachine(file: string): number;
