/**
 * The Stream Manager benchmark's runtime: the local nucleus (scripts/runtime/nucleus.ts) in a
 * process of its own, so its RSS and CPU are the runtime's alone, with a Token Exchange Service
 * and the Stream Manager's exporters pointed at the benchmark's s3rver and kinesalite. Bundled to
 * dist/bench-sm-nucleus.js by the benchmark; talks over the IPC channel of child_process.fork:
 *
 *   argv[2]  JSON { root, s3, kinesis }
 *   -> { ready: pid }                 the nucleus runs (no Stream Manager yet)
 *   <- 'deploy'  -> { port, token }   aws.greengrass.StreamManager deployed and RUNNING
 *   <- 'stop'    -> exits 0 after the nucleus closed
 */
import { silentLogger } from '../../components/lib/logger';
import { createNucleus } from '../runtime/nucleus';

const SM = 'aws.greengrass.StreamManager';

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as { root: string; s3: string; kinesis: string };
  const nucleus = createNucleus({
    rootDir: o.root,
    logger: silentLogger,
    tes: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', lifetimeMs: 3_600_000 },
    streamManager: { endpoints: { s3: o.s3, kinesis: o.kinesis } },
  });
  await nucleus.start();
  const send = (m: unknown): void => void process.send?.(m);
  process.on('message', (m) => {
    if (m === 'deploy') {
      void (async () => {
        const id = nucleus.deployments.submit({
          rootComponentsToAdd: { [SM]: '2.2.1' },
          rootComponentsToRemove: [],
          configuration: { [SM]: { merge: { STREAM_MANAGER_SERVER_PORT: '0' }, reset: [] } },
          failureHandlingPolicy: 'DO_NOTHING',
        });
        for (;;) {
          await nucleus.deployments.whenIdle();
          const s = nucleus.deployments.status(id);
          if (s?.status === 'FAILED') return send({ error: `deployment failed: ${JSON.stringify(s.deploymentStatusDetails)}` });
          if (s?.status === 'SUCCEEDED') break;
        }
        await nucleus.streamManager.settled();
        const running = nucleus.streamManager.running;
        if (!running) return send({ error: 'the Stream Manager is not running after its deployment' });
        send({ port: running.port, token: nucleus.tokenFor(SM) });
      })().catch((e: unknown) => send({ error: String(e) }));
    } else if (m === 'stop') {
      void nucleus.close().finally(() => process.exit(0));
    }
  });
  send({ ready: process.pid });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-sm-nucleus: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
