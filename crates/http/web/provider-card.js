// One provider of one owner: its stored config, if any, and every control that changes it.
//
// A pasted key lives only in its password field until it is sent; after a successful save the
// field is emptied and only the service's masked hint (`api_key_last_4`) is ever shown.

import { busy, h, say, uid } from './dom.js';
import { ago, errorInWords, fieldMessage, testInWords } from './words.js';

const FIELDS = ['api_key', 'model', 'base_url'];
const LABELS = { api_key: 'The key', model: 'The model', base_url: 'The base URL' };

/** Button content: the visible words, then which provider for screen readers (every card has a "Save"). */
const named = (visible, hidden) => [visible, h('span', { class: 'sr-only', text: hidden })];

export class ProviderCard {
  #provider;
  #settings;
  #hooks;
  #config = null;
  #models = new Set();
  /** Model and base URL as last filled in from the stored config, to tell user edits apart. */
  #shown = { model: '', base_url: '' };
  /** Whether the form of a provider without settings was opened. */
  #open = false;
  #ui = {};

  /**
   * `provider`: an entry of `GET …/providers`. `hooks.changed()` reloads the owner's configs;
   * `hooks.confirm(text, label)` asks before deleting.
   */
  constructor(provider, settings, hooks) {
    this.#provider = provider;
    this.#settings = settings;
    this.#hooks = hooks;
    this.#build();
    this.update(null, { reset: true });
  }

  get provider() {
    return this.#provider;
  }

  get config() {
    return this.#config;
  }

  #build() {
    const p = this.#provider;
    const ui = this.#ui;
    const ids = {
      name: uid(`${p.id}-name`),
      body: uid(`${p.id}-body`),
      models: uid(`${p.id}-models`),
    };
    ui.name = h('h4', { id: ids.name, class: 'card-title', tabindex: '-1', text: p.name || p.id });
    ui.badgeDefault = h('span', { class: 'badge badge-default', text: 'Default' });
    ui.badgeOff = h('span', { class: 'badge badge-off', text: 'Disabled' });
    ui.summary = h('p', { class: 'summary' });
    ui.lastTest = h('p', { class: 'last-test' });
    ui.toggle = h('button', {
      type: 'button',
      class: 'toggle',
      'aria-expanded': 'false',
      'aria-controls': ids.body,
      onclick: () => this.#expand(!this.#open),
    });

    const field = (name, label, input, help) => {
      const id = uid(`${p.id}-${name}`);
      const helpId = `${id}-help`;
      const errorId = `${id}-error`;
      input.id = id;
      input.name = name;
      input.setAttribute('aria-describedby', `${helpId} ${errorId}`);
      const helpEl = h('p', { id: helpId, class: 'help', text: help });
      const errorEl = h('p', { id: errorId, class: 'field-error', hidden: true });
      ui[name] = { input, help: helpEl, error: errorEl };
      return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, helpEl, errorEl);
    };

    ui.datalist = h('datalist', { id: ids.models });
    const keyField = field(
      'api_key',
      p.requires_api_key ? 'API key' : 'API key (optional)',
      h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off' }),
      '',
    );
    const modelField = field(
      'model',
      'Model',
      h('input', { type: 'text', list: ids.models, autocomplete: 'off', spellcheck: 'false', placeholder: p.default_model ?? '' }),
      p.default_model ? `Empty means the provider's default, ${p.default_model}.` : 'The model calls use.',
    );
    const baseField = field(
      'base_url',
      'Base URL (optional)',
      h('input', {
        type: 'url',
        inputmode: 'url',
        autocomplete: 'off',
        spellcheck: 'false',
        placeholder: p.default_base_url ?? 'https://',
      }),
      'For an OpenAI-compatible gateway or proxy; empty means the provider\'s own endpoint.',
    );
    const name = p.name || p.id;
    ui.save = h('button', { type: 'submit', class: 'primary' }, named('Save', ` ${name} settings`));
    ui.test = h('button', { type: 'button', onclick: () => this.#test() }, named('Test connection', ` to ${name}`));
    ui.formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    ui.result = h('p', { class: 'test-result', role: 'status' });
    ui.form = h(
      'form',
      { class: 'card-form', novalidate: true, 'aria-labelledby': ids.name, onsubmit: (e) => { e.preventDefault(); this.#save(); } },
      keyField,
      modelField,
      ui.datalist,
      baseField,
      h('div', { class: 'buttons' }, ui.save, ui.test),
      ui.formError,
      ui.result,
    );

    ui.setDefault = h('button', { type: 'button', onclick: () => this.#makeDefault() });
    ui.enable = h('button', { type: 'button', onclick: () => this.#toggleEnabled() });
    ui.remove = h('button', { type: 'button', class: 'danger', onclick: () => this.#remove() }, named('Delete', ` ${name} settings`));
    ui.actions = h('div', { class: 'buttons actions' }, ui.setDefault, ui.enable, ui.remove);
    ui.body = h('div', { id: ids.body, class: 'card-body' }, ui.form, ui.actions);

    this.el = h(
      'li',
      { class: 'card', dataset: { provider: p.id } },
      h('div', { class: 'card-heading' }, ui.name, ui.badgeDefault, ui.badgeOff),
      ui.summary,
      ui.lastTest,
      ui.toggle,
      ui.body,
    );
  }

  /** Shows `config` (or no config). `reset` refills model and base URL even if edited. */
  update(config, { reset = false } = {}) {
    const ui = this.#ui;
    const p = this.#provider;
    this.#config = config;
    const configured = config != null;
    this.el.classList.toggle('configured', configured);
    this.el.classList.toggle('disabled', configured && !config.enabled);
    ui.badgeDefault.hidden = !(configured && config.is_default);
    ui.badgeOff.hidden = !(configured && !config.enabled);

    ui.summary.replaceChildren(...(configured ? this.#summary(config) : [p.requires_api_key ? 'No key saved.' : 'Not set up.']));
    const last = config?.last_test;
    ui.lastTest.hidden = !last;
    ui.lastTest.textContent = last ? `Last test ${ago(last.tested_at)}: ${testInWords(last)}` : '';
    ui.lastTest.classList.toggle('fail', Boolean(last && !last.success));

    const keyHelp = configured && config.api_key_configured
      ? 'A key is saved. Paste a new one to replace it, or leave this empty to keep it.'
      : p.requires_api_key ? 'Paste the key; it is sent once and only its last characters are shown afterwards.' : 'Only if your server needs one.';
    ui.api_key.help.textContent = keyHelp;
    ui.api_key.input.placeholder = configured && config.api_key_configured ? 'Saved (paste to replace)' : 'Paste your key';

    for (const name of ['model', 'base_url']) {
      const stored = (configured ? config[name] : null) ?? '';
      const input = ui[name].input;
      if (reset || input.value === this.#shown[name]) input.value = stored;
      this.#shown[name] = stored;
    }
    if (config?.model) this.#models.add(config.model);
    this.#fillModels();

    ui.toggle.hidden = configured;
    ui.toggle.replaceChildren(
      p.requires_api_key ? 'Add key' : 'Set up',
      h('span', { class: 'sr-only', text: ` for ${p.name || p.id}` }),
    );
    this.#expand(configured || this.#open, false);
    ui.actions.hidden = !configured;
    if (configured) {
      ui.setDefault.disabled = config.is_default || !config.enabled;
      const name = p.name || p.id;
      ui.setDefault.replaceChildren(...named(config.is_default ? 'Default' : 'Make default', `: ${name}`));
      ui.enable.replaceChildren(...named(config.enabled ? 'Disable' : 'Enable', ` ${name}`));
    }
  }

  #summary(config) {
    const parts = [];
    if (config.api_key_configured && config.api_key_last_4) {
      parts.push(
        h(
          'span',
          { class: 'mask', dataset: { last4: config.api_key_last_4 } },
          'Key ',
          h('span', { class: 'sr-only', text: 'ending in ' }),
          h('span', { 'aria-hidden': 'true', text: '••••' }),
          config.api_key_last_4,
        ),
      );
    } else if (config.api_key_configured) {
      parts.push(h('span', { class: 'mask', text: 'Key saved (too short to show its end)' }));
    } else {
      parts.push(h('span', { class: 'mask', text: 'No key' }));
    }
    if (config.model) parts.push(' · ', h('span', { class: 'model', text: config.model }));
    if (config.base_url) parts.push(' · via ', h('span', { class: 'url', text: config.base_url }));
    return parts;
  }

  #fillModels() {
    this.#ui.datalist.replaceChildren(...[...this.#models].sort().map((m) => h('option', { value: m })));
  }

  #expand(open, focus = true) {
    const ui = this.#ui;
    if (!this.#config) this.#open = open;
    ui.toggle.setAttribute('aria-expanded', String(open));
    ui.body.hidden = !open;
    if (open && focus) ui.api_key.input.focus();
  }

  #clearErrors() {
    say(this.#ui.formError, '');
    for (const name of FIELDS) {
      say(this.#ui[name].error, '');
      this.#ui[name].input.removeAttribute('aria-invalid');
    }
  }

  /** Shows an API error next to the field it concerns, else under the form. */
  #showError(error) {
    const name = FIELDS.includes(error.field) ? error.field : null;
    if (name && !error.unreachable && error.status !== 401) {
      const { input, error: slot } = this.#ui[name];
      say(slot, fieldMessage(error.message, name, LABELS[name]));
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } else {
      say(this.#ui.formError, errorInWords(error));
    }
  }

  /**
   * Runs an action with `button` busy, shows its error, and keeps the keyboard focus in the
   * card (a disabled button or a card moving between lists would otherwise drop it).
   */
  async #run(button, work) {
    this.#clearErrors();
    try {
      await busy(button, this.el, work);
    } catch (error) {
      if (error?.name !== 'ApiError') throw error;
      this.#showError(error);
      if (error.status === 409 || error.status === 404) await this.#hooks.changed().catch(() => {});
    }
    this.update(this.#config);
    const focused = this.el.getRootNode().activeElement;
    if (this.el.isConnected && (!focused || focused === document.body)) {
      const target = [button, this.#ui.toggle].find((b) => b.offsetParent !== null && !b.disabled) ?? this.#ui.name;
      target.focus();
    }
  }

  #save() {
    const ui = this.#ui;
    return this.#run(ui.save, async () => {
      const keyInput = ui.api_key.input;
      const body = {};
      if (keyInput.value.trim()) body.api_key = keyInput.value.trim();
      const model = ui.model.input.value.trim();
      const baseUrl = ui.base_url.input.value.trim();
      let saved;
      if (this.#config) {
        if (model !== this.#shown.model) body.model = model || null;
        if (baseUrl !== this.#shown.base_url) body.base_url = baseUrl || null;
        if (Object.keys(body).length === 0) {
          ui.result.textContent = 'Nothing changed.';
          return;
        }
        body.version = this.#config.version;
        saved = await this.#settings.update(this.#config.id, body);
      } else {
        if (!body.api_key && this.#provider.requires_api_key) {
          this.#showError({ message: 'paste the key first', field: 'api_key', status: 400 });
          return;
        }
        body.provider = this.#provider.id;
        if (model) body.model = model;
        if (baseUrl) body.base_url = baseUrl;
        saved = await this.#settings.create(body);
      }
      keyInput.value = '';
      this.update(saved, { reset: true });
      ui.result.textContent = 'Saved.';
      ui.result.className = 'test-result ok';
      await this.#hooks.changed();
    });
  }

  #test() {
    const ui = this.#ui;
    return this.#run(ui.test, async () => {
      const body = { provider: this.#provider.id };
      const key = ui.api_key.input.value.trim();
      const model = ui.model.input.value.trim();
      const baseUrl = ui.base_url.input.value.trim();
      if (key) body.api_key = key;
      if (model) body.model = model;
      if (baseUrl) body.base_url = baseUrl;
      if (!key && !this.#config?.api_key_configured && this.#provider.requires_api_key) {
        this.#showError({ message: 'paste a key to test it', field: 'api_key', status: 400 });
        return;
      }
      ui.result.className = 'test-result';
      ui.result.textContent = 'Testing…';
      let result;
      try {
        result = await this.#settings.test(body);
      } catch (error) {
        ui.result.textContent = '';
        throw error;
      }
      for (const m of Array.isArray(result.models) ? result.models : []) this.#models.add(m);
      if (result.model_available) this.#models.add(result.model_available);
      this.#fillModels();
      ui.result.textContent = testInWords(result);
      ui.result.className = `test-result ${result.success ? 'ok' : 'fail'}`;
      if (!key && this.#config) await this.#hooks.changed();
    });
  }

  #makeDefault() {
    return this.#run(this.#ui.setDefault, async () => {
      await this.#settings.setDefault(this.#config.id);
      await this.#hooks.changed();
      this.#ui.enable.focus();
    });
  }

  #toggleEnabled() {
    return this.#run(this.#ui.enable, async () => {
      const config = this.#config;
      await this.#settings.update(config.id, { enabled: !config.enabled, version: config.version });
      await this.#hooks.changed();
    });
  }

  #remove() {
    const ui = this.#ui;
    return this.#run(ui.remove, async () => {
      const name = this.#provider.name || this.#provider.id;
      const ok = await this.#hooks.confirm(`Delete the ${name} settings? The saved key is erased and calls fall back to the next key in line.`, `Delete ${name}`);
      if (!ok) {
        ui.remove.focus();
        return;
      }
      await this.#settings.remove(this.#config.id);
      ui.result.textContent = '';
      ui.api_key.input.value = '';
      this.#open = false;
      this.update(null, { reset: true });
      await this.#hooks.changed();
      ui.toggle.focus();
    });
  }
}
