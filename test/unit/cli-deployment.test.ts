/** `dcmms-edge deployment create --site ID`: the site id in one place for every component of the bundle. */
import { IMPLEMENTED_COMPONENTS } from '../../components/lib/contract';
import { CliUsageError } from '../../scripts/cli/args';
import { withSiteId } from '../../scripts/cli/deployment';

test('--site merges siteId into every dCMMS component, under what --update-config says', () => {
  const given = new Map<string, unknown>([['com.dcmms.edge.Health', { MERGE: { reportIntervalMs: 60000 }, RESET: ['/x'] }]]);
  const out = withSiteId(given, 'plant-7');
  expect([...out.keys()].sort()).toEqual(IMPLEMENTED_COMPONENTS.map((c) => c.name).sort());
  for (const c of IMPLEMENTED_COMPONENTS) expect((out.get(c.name) as { MERGE: { siteId: string } }).MERGE.siteId).toBe('plant-7');
  expect(out.get('com.dcmms.edge.Health')).toEqual({ MERGE: { siteId: 'plant-7', reportIntervalMs: 60000 }, RESET: ['/x'] });
  // A component's own siteId in --update-config wins (the user said so for that component).
  expect((withSiteId(new Map([['com.dcmms.edge.Uplink', { MERGE: { siteId: 'other' } }]]), 'plant-7').get('com.dcmms.edge.Uplink') as { MERGE: { siteId: string } }).MERGE.siteId).toBe('other');
  expect(() => withSiteId(undefined, 'no spaces')).toThrow(CliUsageError);
});
