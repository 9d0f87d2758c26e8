/**
 * Local deployments through the nucleus: configuration resolution, component-update deferral,
 * configuration validation, failure handling and rollback, bad recipes, artifacts, restart.
 * Components are small sh scripts; clients are the real SDK.
 */
import fs from 'node:fs';
import path from 'node:path';
import yazl from 'yazl';
import type { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { connectIpc } from '../../scripts/runtime/client';
import { createNucleus } from '../../scripts/runtime/nucleus';
import { silentLogger } from '../../components/lib/logger';
import { Harness, pubsubPolicy, recipeYaml, startNucleus } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

const C = 'com.test.Configured';

describe('local deployments', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startNucleus();
  });

  afterEach(async () => {
    await h.close();
  });

  it('resolves configuration in the nucleus order: existing values win over new defaults, RESET brings defaults back, MERGE wins', async () => {
    expect((await h.deploy([{ name: C, defaults: { a: 1, b: { c: 1 } } }])).status).toBe('SUCCEEDED');
    expect(h.nucleus.config.document(C)).toEqual({ a: 1, b: { c: 1 } });

    await h.run({ configuration: { [C]: { merge: { a: 5 }, reset: [] } } });
    expect(h.nucleus.config.document(C).a).toBe(5);

    // version 2 changes a default: the deployed value 5 stays (defaults merge with timestamp 1).
    expect((await h.deploy([{ name: C, version: '2.0.0', defaults: { a: 2, b: { c: 2 }, d: 'new' } }])).status).toBe('SUCCEEDED');
    expect(h.nucleus.config.document(C)).toEqual({ a: 5, b: { c: 1 }, d: 'new' });

    await h.run({ configuration: { [C]: { reset: ['/a', '/b'], merge: { b: { e: true } } } } });
    expect(h.nucleus.config.document(C)).toEqual({ a: 2, b: { c: 2, e: true }, d: 'new' });
  });

  it('starts HARD dependencies first and gives lifecycle scripts the recipe variables and nucleus environment', async () => {
    const status = await h.deploy([
      {
        name: 'com.test.Dep',
        defaults: { greeting: 'hello' },
        // Startup: RUNNING when the script exits 0, so its line is written before Main may start (a
        // Run script is RUNNING once launched: two shells' echoes would race on a busy machine).
        lifecycle: { Startup: { Script: 'echo dep-start >> ../order.txt' } },
      },
      {
        name: 'com.test.Main',
        defaults: { n: 3, obj: { k: 'v' } },
        dependencies: { 'com.test.Dep': { VersionRequirement: '^1.0.0', DependencyType: 'HARD' } },
        lifecycle: {
          Setenv: { FROM_LIFECYCLE: 'life' },
          Run: {
            Script:
              'echo main-start >> ../order.txt; ' +
              // The object comes out as JSON: single quotes keep the shell off its double quotes.
              "echo '{configuration:/n} {configuration:/obj} {com.test.Dep:configuration:/greeting} {iot:thingName} {work:path}' " +
              '$FROM_LIFECYCLE $SVCUID $AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT > vars.txt; sleep 60',
          },
        },
      },
    ]);
    expect(status.status).toBe('SUCCEEDED');
    const varsFile = path.join(h.root, 'work', 'com.test.Main', 'vars.txt');
    await waitFor(() => fs.existsSync(varsFile) && fs.readFileSync(varsFile, 'utf8').endsWith('\n'));
    const order = fs.readFileSync(path.join(h.root, 'work', 'order.txt'), 'utf8').trim().split('\n');
    expect(order).toEqual(['dep-start', 'main-start']);
    const vars = fs.readFileSync(path.join(h.root, 'work', 'com.test.Main', 'vars.txt'), 'utf8').trim().split(' ');
    expect(vars.slice(0, 6)).toEqual(['3', '{"k":"v"}', 'hello', h.nucleus.thingName, path.join(h.root, 'work', 'com.test.Main'), 'life']);
    expect(vars[6]).toBe(h.nucleus.tokenFor('com.test.Main'));
    expect(vars[7]).toBe(h.nucleus.socketPath);
  });

  it('notifies subscribed components before an update and waits while they defer', async () => {
    expect((await h.deploy([{ name: 'com.test.Busy', lifecycle: { Run: 'sleep 60' } }])).status).toBe('SUCCEEDED');
    const client = await h.client('com.test.Busy');
    const events: greengrasscoreipc.model.ComponentUpdatePolicyEvents[] = [];
    let deferrals = 0;
    const op = client.subscribeToComponentUpdates({});
    op.on('message', (e) => {
      events.push(e);
      if (e.preUpdateEvent) {
        // Defer once (a control action in progress), then agree.
        const recheckAfterMs = deferrals++ === 0 ? 700 : 0;
        void client.deferComponentUpdate({ deploymentId: e.preUpdateEvent.deploymentId, recheckAfterMs, message: 'busy' });
      }
    });
    await op.activate();
    const started = Date.now();
    const status = await h.deploy([{ name: 'com.test.Other' }]);
    expect(status.status).toBe('SUCCEEDED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    await waitFor(() => events.some((e) => e.postUpdateEvent));
    expect(events.filter((e) => e.preUpdateEvent)).toHaveLength(2);
    expect(events.find((e) => e.postUpdateEvent)!.postUpdateEvent!.deploymentId).toBe(status.deploymentId);
    const late = await client.deferComponentUpdate({ deploymentId: status.deploymentId, recheckAfterMs: 100 }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(Error);
    await op.close();
  });

  it('fails a deployment whose configuration a component rejects, changing nothing', async () => {
    expect((await h.deploy([{ name: C, defaults: { limit: 1 }, lifecycle: { Run: 'sleep 60' } }])).status).toBe('SUCCEEDED');
    const client = await h.client(C);
    const op = client.subscribeToValidateConfigurationUpdates({});
    op.on('message', (e) => {
      const ev = e.validateConfigurationUpdateEvent!;
      const limit = (ev.configuration as { limit: number }).limit;
      void client.sendConfigurationValidityReport({
        configurationValidityReport: { status: (limit > 10 ? 'REJECTED' : 'ACCEPTED') as never, deploymentId: ev.deploymentId, message: 'limit must be <= 10' },
      });
    });
    await op.activate();
    const bad = await h.run({ configuration: { [C]: { merge: { limit: 99 }, reset: [] } } });
    expect(bad.status).toBe('FAILED');
    expect(bad.deploymentStatusDetails!.detailedDeploymentStatus).toBe('FAILED_NO_STATE_CHANGE');
    expect(bad.deploymentStatusDetails!.deploymentErrorStack!.join()).toContain('limit must be <= 10');
    expect(h.nucleus.config.document(C).limit).toBe(1);
    const good = await h.run({ configuration: { [C]: { merge: { limit: 5 }, reset: [] } } });
    expect(good.status).toBe('SUCCEEDED');
    expect(h.nucleus.config.document(C).limit).toBe(5);
    await op.close();
  });

  it('marks a component that exits at once in a loop BROKEN, fails the deployment, and keeps serving the others', async () => {
    const ok = await h.deploy([
      { name: 'com.test.Steady', lifecycle: { Run: 'sleep 60' }, accessControl: pubsubPolicy('com.test.Steady', ['PublishToTopic', 'SubscribeToTopic'], ['s/*']) },
    ]);
    expect(ok.status).toBe('SUCCEEDED');
    const bad = await h.deploy([{ name: 'com.test.Crashy', lifecycle: { Run: 'exit 3' } }]);
    expect(bad.status).toBe('FAILED');
    expect(bad.deploymentStatusDetails!.detailedDeploymentStatus).toBe('FAILED_ROLLBACK_NOT_REQUESTED');
    expect(h.nucleus.services.state('com.test.Crashy')).toBe('BROKEN');
    expect(h.nucleus.services.state('com.test.Steady')).toBe('RUNNING');
    const steady = await h.client('com.test.Steady');
    const got: unknown[] = [];
    const sub = steady.subscribeToTopic({ topic: 's/x', receiveMode: 'RECEIVE_ALL_MESSAGES' as never });
    sub.on('message', (m) => got.push(m));
    await sub.activate();
    await steady.publishToTopic({ topic: 's/x', publishMessage: { jsonMessage: { message: { alive: true } } } });
    await waitFor(() => got.length === 1);
    await sub.close();
  });

  it('rolls back to the previous version when a ROLLBACK deployment breaks a component', async () => {
    const v1 = await h.deploy([{ name: 'com.test.App', version: '1.0.0', defaults: { v: 1 }, lifecycle: { Run: 'sleep 60' } }]);
    expect(v1.status).toBe('SUCCEEDED');
    const v2 = await h.deploy([{ name: 'com.test.App', version: '2.0.0', defaults: { v: 2 }, lifecycle: { Run: 'exit 1' } }], {
      failureHandlingPolicy: 'ROLLBACK',
    });
    expect(v2.status).toBe('FAILED');
    expect(v2.deploymentStatusDetails!.detailedDeploymentStatus).toBe('FAILED_ROLLBACK_COMPLETE');
    await h.nucleus.services.waitFor(['com.test.App'], ['RUNNING'], 20000);
    expect(h.nucleus.deployments.version('com.test.App')).toBe('1.0.0');
    expect(h.nucleus.config.document('com.test.App').v).toBe(1);
  });

  it('leaves an unknown recipe variable as text, as the nucleus does, so the step fails and the component breaks', async () => {
    const status = await h.deploy([{ name: 'com.test.Typo', lifecycle: { Run: 'exec {nosuch:variable}' } }]);
    expect(status.status).toBe('FAILED');
    expect(h.nucleus.services.state('com.test.Typo')).toBe('BROKEN');
    expect(fs.readFileSync(path.join(h.root, 'logs', 'com.test.Typo.log'), 'utf8')).toContain('{nosuch:variable}');
  });

  it('fails a deployment with an invalid YAML recipe, naming the file, and changes nothing', async () => {
    expect((await h.deploy([{ name: 'com.test.Keep', lifecycle: { Run: 'sleep 60' } }])).status).toBe('SUCCEEDED');
    const dir = path.join(h.root, 'bad-recipes');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'broken.yaml'), 'RecipeFormatVersion: 2020-01-25\nComponentName: [unclosed\n');
    const status = await h.run({ recipeDirectoryPath: dir, rootComponentsToAdd: { 'com.test.Never': '1.0.0' } });
    expect(status.status).toBe('FAILED');
    expect(status.deploymentStatusDetails!.detailedDeploymentStatus).toBe('FAILED_NO_STATE_CHANGE');
    expect(status.deploymentStatusDetails!.deploymentErrorStack!.join()).toContain('broken.yaml');
    expect(h.nucleus.services.state('com.test.Keep')).toBe('RUNNING');
  });

  it('fails with a clear message when an artifact is missing, and unarchives ZIP artifacts', async () => {
    const missing = await h.deploy([
      { name: 'com.test.Art', artifacts: [{ URI: 's3://bucket/com.test.Art/1.0.0/tool.sh' }], lifecycle: { Run: 'sh {artifacts:path}/tool.sh' } },
    ]);
    expect(missing.status).toBe('FAILED');
    expect(missing.deploymentStatusDetails!.deploymentErrorStack!.join()).toContain('tool.sh');

    const artifactDir = path.join(h.root, 'artifacts-src');
    const dir = path.join(artifactDir, 'com.test.Zip', '1.0.0');
    fs.mkdirSync(dir, { recursive: true });
    await new Promise<void>((resolve) => {
      const zip = new yazl.ZipFile();
      zip.addBuffer(Buffer.from('echo unzipped > out.txt\n'), 'bin/run.sh');
      zip.outputStream.pipe(fs.createWriteStream(path.join(dir, 'bundle.zip'))).on('close', () => resolve());
      zip.end();
    });
    const recipeDir = path.join(h.root, 'zip-recipes');
    fs.mkdirSync(recipeDir);
    fs.writeFileSync(
      path.join(recipeDir, 'zip.yaml'),
      recipeYaml({
        name: 'com.test.Zip',
        artifacts: [{ URI: 's3://bucket/com.test.Zip/1.0.0/bundle.zip', Unarchive: 'ZIP' }],
        lifecycle: { Run: 'sh {artifacts:decompressedPath}/bundle/bin/run.sh' },
      }),
    );
    const ok = await h.run({ recipeDirectoryPath: recipeDir, artifactsDirectoryPath: artifactDir, rootComponentsToAdd: { 'com.test.Zip': '1.0.0' } });
    expect(ok.status).toBe('SUCCEEDED');
    await h.nucleus.services.waitFor(['com.test.Zip'], ['FINISHED'], 20000);
    expect(fs.readFileSync(path.join(h.root, 'work', 'com.test.Zip', 'out.txt'), 'utf8').trim()).toBe('unzipped');
  });

  it('honours UpdateState RUNNING from a component still in Startup', async () => {
    const deploying = h.deploy([{ name: 'com.test.Slow', lifecycle: { Startup: 'sleep 60' } }]);
    await waitFor(() => h.nucleus.services.state('com.test.Slow') === 'STARTING', 20000);
    const client = await h.client('com.test.Slow');
    await client.updateState({ state: 'RUNNING' as never });
    expect((await deploying).status).toBe('SUCCEEDED');
    expect(h.nucleus.services.state('com.test.Slow')).toBe('RUNNING');
  });

  it('removes a component: stopped, gone from the list, its token no longer accepted', async () => {
    expect((await h.deploy([{ name: 'com.test.Gone', lifecycle: { Run: 'sleep 60' } }])).status).toBe('SUCCEEDED');
    const token = h.nucleus.tokenFor('com.test.Gone');
    const removed = await h.run({ rootComponentsToRemove: ['com.test.Gone'] });
    expect(removed.status).toBe('SUCCEEDED');
    expect(h.nucleus.services.state('com.test.Gone')).toBeUndefined();
    await expect(connectIpc(h.nucleus.socketPath, token)).rejects.toBeDefined();
  });
});

describe('nucleus restart', () => {
  it('brings back what was deployed, with its configuration', async () => {
    const h = await startNucleus();
    const root = h.root;
    try {
      expect((await h.deploy([{ name: C, defaults: { x: 1 }, lifecycle: { Run: 'sleep 60' } }])).status).toBe('SUCCEEDED');
      await h.run({ configuration: { [C]: { merge: { x: 7 }, reset: [] } } });
      await h.nucleus.close();
      const again = createNucleus({ rootDir: root, logger: silentLogger });
      await again.start();
      try {
        await again.services.waitFor([C], ['RUNNING'], 20000);
        expect(again.config.document(C).x).toBe(7);
        expect(again.deployments.version(C)).toBe('1.0.0');
      } finally {
        await again.close();
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
