// <llm-settings>: the LLM settings UI as a custom element an application drops into its page.
//
//   <script type="module" src="https://settings.example.com/settings/llm-settings.js"></script>
//   <llm-settings api-base="https://settings.example.com"></llm-settings>
//   document.querySelector('llm-settings').tokenProvider = async () => fetchFreshToken();
//
// `api-base` defaults to the service this script came from. The token comes from the
// `tokenProvider` property (called before every request) or else the `token` attribute.
// The element fires `llm-settings-unauthorized` when the service refuses the token.

import { Client, Owner, OwnerSettings, claimsOf } from './api.js';
import { h, say, uid } from './dom.js';
import { OwnerView } from './owner-view.js';

const STYLESHEET = new URL('./llm-settings.css', import.meta.url).href;
const DEFAULT_BASE = new URL('../', import.meta.url).href;

export class LlmSettingsElement extends HTMLElement {
  static observedAttributes = ['api-base', 'token'];

  #tokenProvider = null;
  #scheduled = false;
  #root;
  #dialog;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
  }

  /** An async function returning a fresh bearer token; called before each request. */
  get tokenProvider() {
    return this.#tokenProvider;
  }

  set tokenProvider(fn) {
    this.#tokenProvider = typeof fn === 'function' ? fn : null;
    this.#schedule();
  }

  connectedCallback() {
    this.#schedule();
  }

  attributeChangedCallback(_name, before, after) {
    if (before !== after) this.#schedule();
  }

  /** Loads everything again from the service. */
  reload() {
    this.#schedule();
  }

  #schedule() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.isConnected) this.#render();
    });
  }

  async #token() {
    if (this.#tokenProvider) return (await this.#tokenProvider()) ?? '';
    return this.getAttribute('token') ?? '';
  }

  async #render() {
    const status = h('p', { class: 'view-error', role: 'alert', hidden: true });
    const main = h('div', { class: 'llm-settings', part: 'root' }, status);
    this.#dialog = this.#buildDialog();
    this.#root.replaceChildren(h('link', { rel: 'stylesheet', href: STYLESHEET }), main, this.#dialog.el);

    let token;
    try {
      token = await this.#token();
    } catch {
      say(status, 'Could not get a token to call the settings service.');
      return;
    }
    if (!token) {
      say(status, 'No token: give the element a token attribute or a tokenProvider.');
      return;
    }
    const client = new Client(this.getAttribute('api-base') || DEFAULT_BASE, () => this.#token(), () => {
      this.dispatchEvent(new CustomEvent('llm-settings-unauthorized', { bubbles: true, composed: true }));
    });
    const views = this.#views(claimsOf(token), client);
    main.append(...this.#tabs(views));
  }

  /** The owners this token reaches: the user, the admin's instance, the deployment. */
  #views({ roles, instance }, client) {
    const confirm = (text, label) => this.#dialog.ask(text, label);
    const view = (owner, title, intro) => () => new OwnerView(new OwnerSettings(client, owner), { title, intro, confirm });
    const views = [
      {
        label: 'Your keys',
        make: view(
          Owner.user(),
          'Your keys',
          "Keys you bring yourself. Calls made for you use them before your organization's or the deployment's.",
        ),
      },
    ];
    const superadmin = roles.includes('superadmin');
    if (instance && (roles.includes('admin') || superadmin)) {
      views.push({
        label: `Instance ${instance}`,
        make: view(
          Owner.instance(instance),
          `Instance ${instance}`,
          `Keys for everyone in instance ${instance} who has not brought their own.`,
        ),
      });
    }
    if (superadmin) {
      views.push({ label: 'Other instance', make: () => new InstancePicker(view) });
      views.push({
        label: 'Deployment',
        make: view(Owner.global(), 'Deployment', 'Keys for everyone without a key of their own or their instance\'s.'),
      });
    }
    return views;
  }

  /** A tab list with one lazily loaded panel per view (no tab list for a single view). */
  #tabs(views) {
    const panels = views.map((v) => ({ ...v, tab: null, panel: h('div', { class: 'panel' }), content: null }));
    const open = (entry, focus = false) => {
      for (const p of panels) {
        const selected = p === entry;
        p.panel.hidden = !selected;
        if (p.tab) {
          p.tab.setAttribute('aria-selected', String(selected));
          p.tab.tabIndex = selected ? 0 : -1;
        }
      }
      if (focus) entry.tab?.focus();
      if (!entry.content) {
        entry.content = entry.make();
        entry.panel.append(entry.content.el);
        entry.content.load();
      }
    };
    if (panels.length === 1) {
      open(panels[0]);
      return [panels[0].panel];
    }
    const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Whose settings' });
    for (const p of panels) {
      const tabId = uid('tab');
      const panelId = uid('panel');
      p.tab = h('button', { type: 'button', role: 'tab', id: tabId, 'aria-controls': panelId, text: p.label, onclick: () => open(p) });
      p.panel.id = panelId;
      p.panel.setAttribute('role', 'tabpanel');
      p.panel.setAttribute('aria-labelledby', tabId);
      list.append(p.tab);
    }
    list.addEventListener('keydown', (e) => {
      const i = panels.findIndex((p) => p.tab === e.target);
      if (i < 0) return;
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: panels.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      open(panels[(next + panels.length) % panels.length], true);
    });
    open(panels[0]);
    return [list, ...panels.map((p) => p.panel)];
  }

  /** A modal confirmation: `ask(text, label)` resolves to whether the person confirmed. */
  #buildDialog() {
    const textId = uid('confirm-text');
    const text = h('p', { id: textId });
    const cancel = h('button', { type: 'button', text: 'Cancel' });
    const confirm = h('button', { type: 'button', class: 'danger' });
    const el = h('dialog', { class: 'confirm', 'aria-describedby': textId, 'aria-label': 'Please confirm' }, text, h('div', { class: 'buttons' }, cancel, confirm));
    cancel.addEventListener('click', () => el.close('cancel'));
    confirm.addEventListener('click', () => el.close('ok'));
    return {
      el,
      ask: (message, label) =>
        new Promise((resolve) => {
          text.textContent = message;
          confirm.textContent = label;
          el.returnValue = '';
          el.addEventListener('close', () => resolve(el.returnValue === 'ok'), { once: true });
          el.showModal();
          cancel.focus();
        }),
    };
  }
}

/** For superadmins: pick any instance by id and manage its settings. */
class InstancePicker {
  #current = null;

  constructor(view) {
    const id = uid('instance-id');
    const input = h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false', required: true });
    const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
    const slot = h('div');
    const form = h(
      'form',
      {
        class: 'picker',
        novalidate: true,
        onsubmit: async (e) => {
          e.preventDefault();
          const instance = input.value.trim();
          say(error, instance ? '' : 'Name the instance.');
          if (!instance) return;
          this.#current = view(Owner.instance(instance), `Instance ${instance}`, `Keys for everyone in instance ${instance} who has not brought their own.`)();
          slot.replaceChildren(this.#current.el);
          await this.#current.load();
        },
      },
      h('div', { class: 'field' }, h('label', { for: id, text: 'Instance id' }), input, error),
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', text: 'Open' })),
    );
    this.el = h('section', { class: 'owner-view' }, h('h2', { text: 'Another instance' }), form, slot);
  }

  load() {}
}

if (!customElements.get('llm-settings')) customElements.define('llm-settings', LlmSettingsElement);
