/**
 * The local runtime lets the dcmms-edge CLI (its aws.greengrass.Cli token) publish operator requests
 * on the contract's operator topic, and nothing else on local pub/sub (docs/local-runtime.md).
 */
import { CONTRACT_VERSION, filters, pubsubResource, topics, type OperatorRequest } from '../../components/lib/contract';
import { connectIpc, type IpcClient } from '../../scripts/runtime/client';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

const SITE = 'cli-site';
let h: Harness;
let cli: IpcClient;

beforeAll(async () => {
  h = await startNucleus();
  cli = await connectIpc(h.nucleus.socketPath, h.nucleus.cliToken);
});

afterAll(async () => {
  await cli?.close();
  await h?.close();
});

test('operator requests pass; any other topic is refused', async () => {
  const deployed = await h.deploy([{ name: 'com.test.Listener', accessControl: pubsubPolicy('com.test.Listener', ['SubscribeToTopic'], [pubsubResource('operatorRequest', { siteId: SITE })]) }]);
  expect(deployed.status).toBe('SUCCEEDED');
  const listener = await h.client('com.test.Listener');
  const got: unknown[] = [];
  const sub = listener.subscribeToTopic({ topic: filters.operatorRequest(SITE).filter });
  sub.on('message', (m) => void got.push(m.jsonMessage?.message));
  await sub.activate();
  const req: OperatorRequest = { schemaVersion: CONTRACT_VERSION, siteId: SITE, ts: Date.now(), requestId: 'r-1', operator: 'cli', action: 'manual', assetId: 'INV-01' };
  await cli.publishToTopic({ topic: topics.operatorRequest(SITE), publishMessage: { jsonMessage: { message: req } } });
  await waitFor(() => got.length === 1, 5000, 'the request delivered');
  expect(got[0]).toEqual(req);
  await expect(cli.publishToTopic({ topic: topics.controlCommand(SITE, 'INV-01'), publishMessage: { jsonMessage: { message: {} } } })).rejects.toMatchObject({ serviceError: { _errorCode: 'UnauthorizedError' } });
  await listener.close();
});
