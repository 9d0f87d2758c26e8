/// <reference lib="dom" />
/**
 * Alarms: the active ones (newest first, unacknowledged marked) and the history. An operator
 * acknowledges (optional reason) or shelves (minutes and a required reason) through the
 * confirmation dialog. A live alarm event is shown at once, before the list is re-read.
 */
import { api, ApiError } from '../api';
import { confirmDialog, toast } from '../dialog';
import { h, pill, replace, time, toMs } from '../dom';
import { throttle, type Page, type PageContext } from '../page';
import type { Alarm } from '../types';

type View = 'active' | 'history';

function sortAlarms(a: Alarm[]): Alarm[] {
  return [...a].sort((x, y) => (toMs(y.raisedAt) ?? 0) - (toMs(x.raisedAt) ?? 0));
}

function isShelved(a: Alarm): boolean {
  return a.shelved !== undefined && (toMs(a.shelved.until) ?? 0) > Date.now();
}

async function acknowledge(a: Alarm, after: () => void): Promise<void> {
  const v = await confirmDialog({
    title: `Acknowledge ${a.kind} on ${a.assetId}?`,
    body: `"${a.message}". Acknowledging silences the horn; the alarm stays active until its cause clears.`,
    confirmLabel: 'Acknowledge',
    fields: [{ name: 'reason', label: 'Reason', type: 'text' }],
  });
  if (!v) return;
  try {
    await api.acknowledge(a.alarmId, v.reason || undefined);
    toast(`Acknowledged ${a.kind} on ${a.assetId}`, 'ok');
  } catch (err) {
    toast(`Acknowledge refused: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }
  after();
}

async function shelve(a: Alarm, after: () => void): Promise<void> {
  const v = await confirmDialog({
    title: `Shelve ${a.kind} on ${a.assetId}?`,
    body: 'A shelved alarm is hidden from the active list for the time given; it comes back by itself.',
    confirmLabel: 'Shelve',
    fields: [
      { name: 'minutes', label: 'Minutes (1–1440)', type: 'number', required: true, value: '60', min: 1, max: 1440 },
      { name: 'reason', label: 'Reason', type: 'text', required: true },
    ],
  });
  if (!v) return;
  try {
    await api.shelve(a.alarmId, Number(v.minutes), v.reason!);
    toast(`Shelved ${a.kind} on ${a.assetId} for ${v.minutes} min`, 'ok');
  } catch (err) {
    toast(`Shelve refused: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }
  after();
}

async function unshelve(a: Alarm, after: () => void): Promise<void> {
  const v = await confirmDialog({ title: `Unshelve ${a.kind} on ${a.assetId}?`, body: 'The alarm shows in the active list again.', confirmLabel: 'Unshelve' });
  if (!v) return;
  try {
    await api.unshelve(a.alarmId);
  } catch (err) {
    toast(`Unshelve refused: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }
  after();
}

function row(a: Alarm, ctx: PageContext, view: View, after: () => void): HTMLElement {
  const shelved = isShelved(a);
  const actions: HTMLElement[] = [];
  if (ctx.canAct && view === 'active' && a.state === 'active') {
    if (!a.acknowledged) actions.push(h('button', { class: 'primary', 'data-action': 'acknowledge', onclick: () => void acknowledge(a, after) }, 'Acknowledge'));
    actions.push(
      shelved
        ? h('button', { class: 'secondary', 'data-action': 'unshelve', onclick: () => void unshelve(a, after) }, 'Unshelve')
        : h('button', { class: 'secondary', 'data-action': 'shelve', onclick: () => void shelve(a, after) }, 'Shelve'),
    );
  }
  return h(
    'tr',
    { 'data-alarm': a.alarmId, 'data-asset': a.assetId, 'data-kind': a.kind, class: `sev-${a.severity.toLowerCase()}${a.acknowledged ? '' : ' unack'}${shelved ? ' shelved' : ''}` },
    h('td', {}, pill(a.severity)),
    h('th', { scope: 'row' }, a.assetId),
    h('td', {}, a.kind, h('div', { class: 'sub' }, a.message)),
    h('td', {}, time(a.raisedAt), a.clearedAt ? h('div', { class: 'sub' }, `cleared ${time(a.clearedAt)}`) : null),
    h(
      'td',
      { 'data-field': 'status' },
      a.state === 'cleared' ? pill('cleared') : pill('active'),
      a.acknowledged ? h('div', { class: 'sub', 'data-field': 'acknowledged' }, `ack. by ${a.acknowledged.by} ${time(a.acknowledged.at)}${a.acknowledged.reason ? `: ${a.acknowledged.reason}` : ''}`) : null,
      shelved ? h('div', { class: 'sub', 'data-field': 'shelved' }, `shelved by ${a.shelved!.by} until ${time(a.shelved!.until)}: ${a.shelved!.reason}`) : null,
    ),
    h('td', { class: 'actions' }, actions),
  );
}

export const alarmsPage: Page = {
  id: 'alarms',
  title: 'Alarms',
  mount(root, ctx) {
    let view: View = 'active';
    let rows: Alarm[] = [];
    let closed = false;
    const tabs = h('div', { class: 'tabs', role: 'tablist' });
    const list = h('div', { class: 'alarm-list' });
    replace(root, tabs, list);

    const draw = (): void => {
      replace(
        tabs,
        (['active', 'history'] as View[]).map((v) =>
          h('button', { role: 'tab', class: v === view ? 'tab active' : 'tab', 'aria-selected': v === view ? 'true' : 'false', 'data-view': v, onclick: () => select(v) }, v === 'active' ? 'Active' : 'History'),
        ),
      );
      const shown = view === 'active' ? rows.filter((a) => a.state === 'active') : rows;
      if (shown.length === 0) {
        replace(list, h('p', { class: 'note empty' }, view === 'active' ? 'No active alarms.' : 'No alarms in the history.'));
        return;
      }
      replace(
        list,
        h(
          'table',
          { class: 'grid alarms', id: `alarms-${view}` },
          h('thead', {}, h('tr', {}, h('th', {}, 'Severity'), h('th', {}, 'Asset'), h('th', {}, 'Alarm'), h('th', {}, 'Raised'), h('th', {}, 'Status'), h('th', {}, ''))),
          h('tbody', {}, sortAlarms(shown).map((a) => row(a, ctx, view, () => reload()))),
        ),
      );
    };
    const load = async (): Promise<void> => {
      try {
        const got = await api.alarms(view);
        if (closed) return;
        rows = got;
        draw();
      } catch (err) {
        if (closed || (err instanceof ApiError && err.status === 401)) return;
        replace(list, h('p', { class: 'error' }, `Cannot read the alarms: ${err instanceof Error ? err.message : String(err)}`));
      }
    };
    const reload = throttle(() => void load(), 300);
    const select = (v: View): void => {
      view = v;
      rows = [];
      draw();
      void load();
    };
    draw();
    void load();
    const offs = [
      ctx.live.on('alarm', (a) => {
        // Shown at once; the re-read below brings acknowledgements and shelving made elsewhere.
        const i = rows.findIndex((r) => r.alarmId === a.alarmId);
        if (i >= 0) rows[i] = a;
        else rows.push(a);
        draw();
        reload();
      }),
      ctx.live.onReconnect(reload),
    ];
    return () => {
      closed = true;
      reload.cancel();
      for (const off of offs) off();
    };
  },
};
