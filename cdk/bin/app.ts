/**
 * `npx cdk synth` entry (cdk.json runs cdk/run.js, which bundles this file). Offline and without
 * credentials: the stack is environment-agnostic. `-c dcmms:lock=record` records new component
 * versions in cdk/artifacts.lock.json; NAG=0 skips cdk-nag (not for CI).
 */
import { createApp } from '../lib/app';

try {
  const { app } = createApp({ nag: process.env['NAG'] !== '0' });
  app.synth();
} catch (e) {
  // A clear one-line reason instead of a stack trace for configuration and lock errors.
  process.stderr.write(`dcmms cdk: ${(e as Error).message}\n`);
  process.exit(1);
}
