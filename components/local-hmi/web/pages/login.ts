/// <reference lib="dom" />
/** Login: the only page without a session. The first-start admin password is in the LocalHmi log. */
import { api, ApiError } from '../api';
import { h, replace } from '../dom';
import type { Session } from '../types';

export function mountLogin(root: HTMLElement, onLogin: (s: Session) => void): void {
  const user = h('input', { name: 'username', id: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'dialog-error', role: 'alert', id: 'login-error' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h(
    'form',
    { class: 'login', id: 'login' },
    h('h1', {}, 'dCMMS Edge'),
    h('p', { class: 'note' }, 'Local operator panel of this site.'),
    h('label', { class: 'field' }, h('span', {}, 'User'), user),
    h('label', { class: 'field' }, h('span', {}, 'Password'), pass),
    error,
    submit,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    try {
      onLogin(await api.login(user.value.trim(), pass.value));
    } catch (err) {
      error.textContent =
        err instanceof ApiError && err.status === 401 ? 'Wrong user or password.' : err instanceof ApiError && err.status === 429 ? 'Too many attempts; wait a minute and try again.' : `Login failed: ${err instanceof Error ? err.message : String(err)}`;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  replace(root, form);
  user.focus();
}
