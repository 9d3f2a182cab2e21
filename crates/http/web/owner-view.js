// Everything one owner (the user, an instance, the deployment) has: which key calls use,
// one card per offered provider, and the task assignments.

import { busy, h, say, uid } from './dom.js';
import { ProviderCard } from './provider-card.js';
import { errorInWords, fieldMessage, sourceInWords } from './words.js';

export class OwnerView {
  #settings;
  #confirm;
  #cards = new Map();
  #providers = [];
  #assignments = [];
  #ui = {};

  /** `settings`: the owner's `OwnerSettings`; `confirm(text, label)`: asks before deleting. */
  constructor(settings, { title, intro, confirm }) {
    this.#settings = settings;
    this.#confirm = confirm;
    const ui = this.#ui;
    const headingId = uid('owner');
    ui.alert = h('p', { class: 'view-error', role: 'alert', hidden: true });
    ui.effective = h('p', { class: 'effective', role: 'status', 'aria-live': 'polite' });
    ui.configured = h('ul', { class: 'cards', 'aria-label': 'Configured providers' });
    ui.available = h('ul', { class: 'cards compact', 'aria-label': 'Providers without settings' });
    ui.configuredEmpty = h('p', { class: 'empty', text: 'Nothing configured yet. Add a key below.' });
    ui.tasks = this.#buildTasks();
    this.el = h(
      'section',
      { class: 'owner-view', 'aria-labelledby': headingId },
      h('h2', { id: headingId, text: title }),
      intro ? h('p', { class: 'intro', text: intro }) : null,
      ui.alert,
      settings.owner.kind === 'user' ? ui.effective : null,
      h('section', { class: 'block' }, h('h3', { text: 'Configured' }), ui.configuredEmpty, ui.configured),
      h('section', { class: 'block' }, h('h3', { text: 'Add a provider' }), ui.available),
      ui.tasks,
    );
  }

  /** Loads providers, configs, assignments (and, for a user, the effective credential). */
  async load() {
    say(this.#ui.alert, '');
    this.el.setAttribute('aria-busy', 'true');
    try {
      const [providers, configs] = await Promise.all([this.#settings.providers(), this.#settings.configs()]);
      this.#providers = providers.providers ?? [];
      for (const p of this.#providers) {
        if (!this.#cards.has(p.id)) {
          this.#cards.set(p.id, new ProviderCard(p, this.#settings, { changed: () => this.refresh(), confirm: this.#confirm }));
        }
      }
      this.#place(configs);
      this.#fillProviderSelect();
    } catch (error) {
      if (error?.name !== 'ApiError') throw error;
      say(this.#ui.alert, errorInWords(error));
      return error;
    } finally {
      this.el.removeAttribute('aria-busy');
    }
    await Promise.all([this.#loadAssignments(), this.#loadEffective()]);
    return null;
  }

  /** Reloads the configs after a change (defaults and last tests move between cards). */
  async refresh() {
    const configs = await this.#settings.configs();
    this.#place(configs);
    await this.#loadEffective();
  }

  #place(configs) {
    const byProvider = new Map(configs.map((c) => [c.provider, c]));
    const configured = [];
    const available = [];
    for (const p of this.#providers) {
      const card = this.#cards.get(p.id);
      const config = byProvider.get(p.id) ?? null;
      if (JSON.stringify(card.config) !== JSON.stringify(config)) card.update(config);
      (config ? configured : available).push(card.el);
    }
    // Configs of providers no longer offered are still the owner's: show them read-only.
    for (const c of configs) {
      if (!this.#providers.some((p) => p.id === c.provider)) {
        configured.push(h('li', { class: 'card configured' }, h('h4', { class: 'card-title', text: c.provider }), h('p', { class: 'summary', text: 'This provider is no longer offered.' })));
      }
    }
    this.#keep(this.#ui.configured, configured);
    this.#keep(this.#ui.available, available);
    this.#ui.configuredEmpty.hidden = configured.length > 0;
  }

  /** Puts `items` into `list` in order, moving only what moved (a moved node loses focus). */
  #keep(list, items) {
    items.forEach((item, i) => {
      if (list.children[i] !== item) list.insertBefore(item, list.children[i] ?? null);
    });
    while (list.children.length > items.length) list.lastElementChild.remove();
  }

  async #loadEffective() {
    if (this.#settings.owner.kind !== 'user') return;
    const el = this.#ui.effective;
    el.classList.remove('none');
    try {
      const eff = await this.#settings.effective();
      const provider = this.#providers.find((p) => p.id === eff.provider)?.name ?? eff.provider;
      el.replaceChildren(
        'Calls use ',
        h('strong', { class: 'source', dataset: { owner: eff.source?.owner ?? '' }, text: sourceInWords(eff.source?.owner) }),
        `: ${provider}${eff.model ? `, model ${eff.model}` : ''}.`,
      );
    } catch (error) {
      if (error?.name !== 'ApiError') throw error;
      el.classList.add('none');
      el.replaceChildren(
        error.code === 'provider_not_configured'
          ? 'Calls use no key yet: add one below, or ask your organization to set one up.'
          : `Could not tell which key calls use: ${errorInWords(error)}`,
      );
    }
  }

  // ---- Task assignments ----

  #buildTasks() {
    const ui = this.#ui;
    const headingId = uid('tasks');
    const field = (name, label, input, help) => {
      const id = uid(`task-${name}`);
      input.id = id;
      input.name = name;
      const errorEl = h('p', { id: `${id}-error`, class: 'field-error', hidden: true });
      const helpEl = help ? h('p', { id: `${id}-help`, class: 'help', text: help }) : null;
      input.setAttribute('aria-describedby', [helpEl?.id, errorEl.id].filter(Boolean).join(' '));
      ui[`task_${name}`] = { input, error: errorEl };
      return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, helpEl, errorEl);
    };
    ui.taskList = h('ul', { class: 'tasks', 'aria-label': 'Task assignments' });
    ui.taskEmpty = h('p', { class: 'empty', text: 'No task assignments: every task uses the default provider.' });
    ui.taskAlert = h('p', { class: 'form-error', role: 'alert', hidden: true });
    ui.taskStatus = h('p', { class: 'test-result', role: 'status' });
    ui.taskProvider = h('select');
    ui.taskModels = h('datalist', { id: uid('task-models') });
    ui.taskSave = h('button', { type: 'submit', class: 'primary', text: 'Save assignment' });
    ui.taskForm = h(
      'form',
      { class: 'task-form', novalidate: true, 'aria-label': 'Assign a task', onsubmit: (e) => { e.preventDefault(); this.#saveAssignment(); } },
      h(
        'div',
        { class: 'task-fields' },
        field('task', 'Task', h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. summarize' })),
        field('provider', 'Provider', ui.taskProvider),
        field('model', 'Model', h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', list: ui.taskModels.id })),
      ),
      ui.taskModels,
      h('div', { class: 'buttons' }, ui.taskSave),
      ui.taskAlert,
      ui.taskStatus,
    );
    ui.taskProvider.addEventListener('change', () => this.#fillTaskModels());
    return h(
      'section',
      { class: 'block', 'aria-labelledby': headingId },
      h('h3', { id: headingId, text: 'Task assignments' }),
      h('p', { class: 'intro', text: 'Name a task your application runs and the provider and model it should use.' }),
      ui.taskEmpty,
      ui.taskList,
      ui.taskForm,
    );
  }

  #fillProviderSelect() {
    const select = this.#ui.taskProvider;
    const current = select.value;
    select.replaceChildren(...this.#providers.map((p) => h('option', { value: p.id, text: p.name || p.id })));
    if (current) select.value = current;
    this.#fillTaskModels();
  }

  #fillTaskModels() {
    const p = this.#providers.find((x) => x.id === this.#ui.taskProvider.value);
    const models = new Set([p?.default_model, this.#cards.get(p?.id)?.config?.model].filter(Boolean));
    this.#ui.taskModels.replaceChildren(...[...models].map((m) => h('option', { value: m })));
    this.#ui.task_model.input.placeholder = p?.default_model ?? '';
  }

  async #loadAssignments() {
    try {
      this.#assignments = await this.#settings.assignments();
      this.#renderAssignments();
    } catch (error) {
      if (error?.name !== 'ApiError') throw error;
      say(this.#ui.taskAlert, errorInWords(error));
    }
  }

  #renderAssignments() {
    const ui = this.#ui;
    ui.taskEmpty.hidden = this.#assignments.length > 0;
    ui.taskList.hidden = this.#assignments.length === 0;
    ui.taskList.replaceChildren(
      ...this.#assignments.map((a) => {
        const name = this.#providers.find((p) => p.id === a.provider)?.name ?? a.provider;
        const edit = h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit task ${a.task}`, onclick: () => this.#editAssignment(a) });
        const remove = h('button', { type: 'button', class: 'danger', text: 'Remove', 'aria-label': `Remove task ${a.task}` });
        remove.addEventListener('click', () => this.#removeAssignment(a, remove));
        return h(
          'li',
          { class: 'task', dataset: { task: a.task } },
          h('span', { class: 'task-name', text: a.task }),
          h('span', { class: 'task-target' }, h('span', { class: 'sr-only', text: 'uses ' }), `${name} · ${a.model}`),
          h('span', { class: 'buttons' }, edit, remove),
        );
      }),
    );
  }

  #editAssignment(a) {
    const ui = this.#ui;
    ui.task_task.input.value = a.task;
    ui.taskProvider.value = a.provider;
    this.#fillTaskModels();
    ui.task_model.input.value = a.model;
    ui.task_model.input.focus();
  }

  #clearTaskErrors() {
    const ui = this.#ui;
    say(ui.taskAlert, '');
    ui.taskStatus.textContent = '';
    for (const name of ['task', 'provider', 'model']) {
      say(ui[`task_${name}`].error, '');
      ui[`task_${name}`].input.removeAttribute('aria-invalid');
    }
  }

  #taskError(error) {
    // The API names a field of the saved list (`assignments[0].task`); the form has one item.
    const field = (error.field || '').replace(/^assignments\[\d+\]\./, '');
    const slot = this.#ui[`task_${field}`];
    if (slot && error.status && error.status !== 401) {
      say(slot.error, fieldMessage(error.message, field, `The ${field}`));
      slot.input.setAttribute('aria-invalid', 'true');
      slot.input.focus();
    } else {
      say(this.#ui.taskAlert, errorInWords(error));
    }
  }

  async #saveAssignment() {
    const ui = this.#ui;
    this.#clearTaskErrors();
    const assignment = {
      task: ui.task_task.input.value.trim(),
      provider: ui.taskProvider.value,
      model: ui.task_model.input.value.trim() || (this.#providers.find((p) => p.id === ui.taskProvider.value)?.default_model ?? ''),
    };
    if (!assignment.task) return this.#taskError({ field: 'task', status: 400, message: 'name the task' });
    if (!assignment.model) return this.#taskError({ field: 'model', status: 400, message: 'name the model' });
    try {
      await busy(ui.taskSave, ui.tasks, async () => {
        this.#assignments = await this.#settings.saveAssignments([assignment]);
      });
      this.#renderAssignments();
      ui.task_task.input.value = '';
      ui.task_model.input.value = '';
      const name = this.#providers.find((p) => p.id === assignment.provider)?.name ?? assignment.provider;
      ui.taskStatus.textContent = `Saved: ${assignment.task} uses ${name}, ${assignment.model}.`;
      await this.#loadEffective();
    } catch (error) {
      if (error?.name !== 'ApiError') throw error;
      this.#taskError(error);
    }
  }

  async #removeAssignment(a, button) {
    this.#clearTaskErrors();
    try {
      await busy(button, this.#ui.tasks, () => this.#settings.removeAssignment(a.task));
      this.#assignments = this.#assignments.filter((x) => x.task !== a.task);
      this.#renderAssignments();
      this.#ui.taskStatus.textContent = `Removed ${a.task}.`;
      this.#ui.task_task.input.focus();
    } catch (error) {
      if (error?.name !== 'ApiError') throw error;
      this.#taskError(error);
    }
  }
}
