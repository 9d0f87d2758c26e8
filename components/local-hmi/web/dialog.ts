/// <reference lib="dom" />
/**
 * The confirmation dialog every action goes through: what will happen, in words, and the inputs
 * the action needs (a reason, a number of minutes). Nothing is sent until "Confirm" is pressed;
 * the server also refuses an action without `confirm: true`.
 */
import { h } from './dom';

export interface Field {
  name: string;
  label: string;
  type: 'text' | 'number' | 'password';
  required?: boolean;
  value?: string;
  min?: number;
  max?: number;
}

export interface ConfirmOptions {
  title: string;
  body: string;
  confirmLabel: string;
  danger?: boolean;
  fields?: Field[];
}

/** Resolves with the field values on confirm, null on cancel. */
export function confirmDialog(opts: ConfirmOptions): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const inputs = new Map<string, HTMLInputElement>();
    const error = h('p', { class: 'dialog-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'dialog-title', novalidate: true },
      h('h2', { id: 'dialog-title' }, opts.title),
      h('p', { class: 'dialog-body' }, opts.body),
      (opts.fields ?? []).map((f) => {
        const input = h('input', {
          name: f.name,
          type: f.type,
          required: f.required ?? false,
          value: f.value ?? '',
          ...(f.min !== undefined ? { min: f.min } : {}),
          ...(f.max !== undefined ? { max: f.max } : {}),
          ...(f.type === 'number' ? { inputmode: 'numeric' } : {}),
          autocomplete: 'off',
        });
        inputs.set(f.name, input);
        return h('label', { class: 'field' }, h('span', {}, f.label + (f.required ? '' : ' (optional)')), input);
      }),
      error,
      h(
        'div',
        { class: 'dialog-buttons' },
        h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel', onclick: () => close(null) }, 'Cancel'),
        h('button', { type: 'submit', class: opts.danger ? 'danger' : 'primary', 'data-action': 'confirm' }, opts.confirmLabel),
      ),
    );
    const overlay = h('div', { class: 'overlay' }, form);
    const onKey = (ev: KeyboardEvent): void => {
      if (ev.key === 'Escape') close(null);
    };
    function close(values: Record<string, string> | null): void {
      document.removeEventListener('keydown', onKey);
      overlay.remove();
      resolve(values);
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const values: Record<string, string> = {};
      for (const f of opts.fields ?? []) {
        const input = inputs.get(f.name)!;
        const v = input.value.trim();
        if (f.required && !v) {
          error.textContent = `${f.label} is required.`;
          input.focus();
          return;
        }
        if (f.type === 'number' && v) {
          const n = Number(v);
          if (!Number.isFinite(n) || (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max)) {
            error.textContent = `${f.label} must be a number from ${f.min ?? '…'} to ${f.max ?? '…'}.`;
            input.focus();
            return;
          }
        }
        values[f.name] = v;
      }
      close(values);
    });
    document.addEventListener('keydown', onKey);
    document.body.append(overlay);
    (inputs.values().next().value ?? form.querySelector<HTMLButtonElement>('[data-action=cancel]'))?.focus();
  });
}

/** A short message at the bottom of the screen (outcome of an action). */
export function toast(text: string, kind: 'ok' | 'error' | 'info' = 'info'): void {
  let host = document.getElementById('toasts');
  if (!host) {
    host = h('div', { id: 'toasts', 'aria-live': 'polite' });
    document.body.append(host);
  }
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  host.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3000);
}
