/// <reference lib="dom" />
/**
 * Control: curtail an inverter to a percentage of its rating, restore it, and put any asset in
 * manual mode (automation leaves it alone) or back to automatic. Every action goes through the
 * confirmation dialog, then the page follows the request (GET /api/control/:id) until LocalControl
 * answers and shows the outcome. A viewer sees the assets and no buttons.
 */
import { api, ApiError } from '../api';
import { confirmDialog } from '../dialog';
import { h, kw, pill, replace } from '../dom';
import { throttle, type Page, type PageContext } from '../page';
import type { ControlAction, ControlStatus, Device } from '../types';

/** SunSpec inverter models (101-103 integer, 111-113 float): curtailment applies to these. */
const INVERTER_MODELS = [101, 102, 103, 111, 112, 113];
const FOLLOW_MS = 30_000;

const isInverter = (d: Device): boolean => (d.models ?? []).some((m) => INVERTER_MODELS.includes(m)) || /^INV/i.test(d.assetId);

function num(d: Device, ...points: string[]): number | undefined {
  for (const p of points) {
    const v = d.values?.[p]?.value;
    if (typeof v === 'number') return v;
  }
  return undefined;
}

function describe(action: ControlAction, assetId: string, value?: number): string {
  switch (action) {
    case 'curtail':
      return `Limit ${assetId} to ${value === undefined ? 'the percentage below' : `${value} %`} of its rated power.`;
    case 'restore':
      return `Remove the power limit of ${assetId} (back to 100 %).`;
    case 'manual':
      return `Put ${assetId} in manual mode: automatic rules (curtailment, isolation, shutdown) leave it alone until it is set back to automatic.`;
    case 'automatic':
      return `Put ${assetId} back under automatic control.`;
  }
}

async function follow(requestId: string, out: HTMLElement): Promise<void> {
  const deadline = Date.now() + FOLLOW_MS;
  for (;;) {
    let s: ControlStatus;
    try {
      s = await api.controlStatus(requestId);
    } catch (err) {
      out.dataset.state = 'failed';
      out.textContent = `Cannot follow the request: ${err instanceof Error ? err.message : String(err)}`;
      return;
    }
    out.dataset.state = s.state;
    if (s.state !== 'pending') {
      out.textContent = `${s.state === 'done' ? 'Done' : s.state === 'refused' ? 'Refused' : 'Failed'}${s.detail ? `: ${s.detail}` : ''}`;
      return;
    }
    if (Date.now() > deadline) {
      out.textContent = 'No answer from LocalControl yet; the request stays pending (see the audit log).';
      return;
    }
    out.textContent = 'Sent, waiting for the plant…';
    await new Promise((r) => setTimeout(r, 400));
  }
}

async function act(d: Device, action: ControlAction, out: HTMLElement): Promise<void> {
  const fields = action === 'curtail' ? [{ name: 'value', label: 'Limit (% of rated power, 0–100)', type: 'number' as const, required: true, value: '50', min: 0, max: 100 }] : [];
  const v = await confirmDialog({
    title: `${action[0]!.toUpperCase()}${action.slice(1)} ${d.assetId}?`,
    body: describe(action, d.assetId),
    confirmLabel: action === 'curtail' ? 'Curtail' : action === 'restore' ? 'Restore' : action === 'manual' ? 'Set manual' : 'Set automatic',
    danger: action === 'curtail' || action === 'manual',
    fields,
  });
  if (!v) return;
  const value = action === 'curtail' ? Number(v.value) : undefined;
  out.dataset.state = 'sending';
  out.textContent = describe(action, d.assetId, value);
  try {
    const { requestId } = await api.control(d.assetId, action, value);
    out.dataset.request = requestId;
    await follow(requestId, out);
  } catch (err) {
    out.dataset.state = 'refused';
    out.textContent = `Refused: ${err instanceof ApiError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err)}`;
  }
}

const POWER_POINTS = ['103.W', '101.W', '102.W', '111.W', '112.W', '113.W'];

/**
 * SunSpec model 123: WMaxLimPct with WMaxLim_Ena, the enumeration the adapter gives by its symbol
 * (ENABLED / DISABLED; a raw 1 / 0 also counts).
 */
function limitText(d: Device): string {
  const pct = num(d, '123.WMaxLimPct');
  if (pct === undefined) return '–';
  const ena = d.values?.['123.WMaxLim_Ena']?.value;
  return ena === 'ENABLED' || ena === 1 ? `${pct} %` : 'none';
}

interface Card {
  el: HTMLElement;
  /** Re-renders the live figures from the device's values (telemetry events change them). */
  refresh(): void;
}

function card(d: Device, ctx: PageContext): Card {
  const out = h('p', { class: 'outcome', role: 'status', 'data-field': 'outcome' });
  const inverter = isInverter(d);
  const power = h('dd', { 'data-field': 'power' });
  const limit = h('dd', { 'data-field': 'limit' });
  const refresh = (): void => {
    power.textContent = kw(num(d, ...POWER_POINTS));
    limit.textContent = limitText(d);
  };
  refresh();
  const button = (action: ControlAction, label: string, cls: string): HTMLElement =>
    h('button', { class: cls, 'data-action': action, onclick: () => void act(d, action, out) }, label);
  const el = h(
    'article',
    { class: 'control-card', 'data-asset': d.assetId },
    h('header', {}, h('h3', {}, d.assetId), pill(d.status)),
    inverter ? h('dl', {}, h('dt', {}, 'AC power'), power, h('dt', {}, 'Power limit'), limit) : null,
    ctx.canAct
      ? h(
          'div',
          { class: 'buttons' },
          inverter ? [button('curtail', 'Curtail…', 'danger'), button('restore', 'Restore', 'primary')] : null,
          button('manual', 'Manual', 'secondary'),
          button('automatic', 'Automatic', 'secondary'),
        )
      : null,
    out,
  );
  return { el, refresh };
}

export const controlPage: Page = {
  id: 'control',
  title: 'Control',
  mount(root, ctx) {
    let closed = false;
    const list = h('div', { class: 'controls' }, h('p', { class: 'note' }, 'Loading…'));
    replace(
      root,
      ctx.canAct ? h('p', { class: 'note' }, 'Every action asks for confirmation and is recorded in the audit log with your name.') : h('p', { class: 'note readonly' }, `Your role (${ctx.session.role}) may look but not control the plant.`),
      list,
    );
    const cards = new Map<string, { d: Device; c: Card }>();
    const load = async (): Promise<void> => {
      try {
        const devices = await api.devices();
        if (closed) return;
        // The same assets: new values into the cards in place (an outcome on a card stays).
        if (devices.length === cards.size && devices.every((d) => cards.has(d.assetId))) {
          for (const d of devices) {
            const x = cards.get(d.assetId)!;
            x.d.values = d.values ?? {};
            x.c.refresh();
          }
          return;
        }
        // Inverters first: they are what curtailment acts on.
        devices.sort((a, b) => Number(isInverter(b)) - Number(isInverter(a)) || a.assetId.localeCompare(b.assetId, 'en', { numeric: true }));
        cards.clear();
        for (const d of devices) cards.set(d.assetId, { d, c: card(d, ctx) });
        replace(list, devices.length ? [...cards.values()].map((x) => x.c.el) : h('p', { class: 'note empty' }, 'No devices configured.'));
      } catch (err) {
        if (closed || (err instanceof ApiError && err.status === 401)) return;
        replace(list, h('p', { class: 'error' }, `Cannot read the devices: ${err instanceof Error ? err.message : String(err)}`));
      }
    };
    void load();
    // Power and limit follow the plant: a curtailment shows once the inverter reports it. Live
    // events carry the numbers; the enable flag is an enumeration, so the values are also re-read
    // (at most every 2 s while telemetry flows).
    const reread = throttle(() => void load(), 2000);
    const off = ctx.live.on('telemetry', (t) => {
      const x = cards.get(t.assetId);
      if (!x) return;
      x.d.values ??= {};
      for (const [p, v] of Object.entries(t.values)) x.d.values[p] = { ...x.d.values[p], value: v, ts: t.ts };
      x.c.refresh();
      reread();
    });
    return () => {
      closed = true;
      reread.cancel();
      off();
    };
  },
};
