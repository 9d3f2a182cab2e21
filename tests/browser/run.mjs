// Drives the settings page in headless Chromium against a running service.
//
// Started by tests/browser_ui.rs, which starts the real binary, the fake provider and a host
// page on another origin, and passes everything as JSON in LLM_SETTINGS_BROWSER_TEST:
//   { scenario, chromium, service, tokens: {user, admin, superadmin}, fake: {openai, anthropic},
//     keys: {valid, refused}, host?, refusing?, screenshots }
// Prints one line per checked step; exits non-zero on the first failure.

import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.env.LLM_SETTINGS_BROWSER_TEST ?? 'null');
if (!config) {
  console.error('LLM_SETTINGS_BROWSER_TEST is not set; run this through `cargo test --test browser_ui`.');
  process.exit(2);
}

const TIMEOUT = 15_000;
const step = (text) => console.log(`ok - ${text}`);

class Failure extends Error {}

function check(condition, message) {
  if (!condition) throw new Failure(message);
}

/** Polls `read()` until `accept(value)` holds; fails with `message` and the last value. */
async function eventually(read, accept, message, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await read();
      if (accept(last)) return last;
    } catch (error) {
      last = error.message;
    }
    if (Date.now() > deadline) throw new Failure(`${message} (last seen: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const textOf = (locator) => locator.innerText({ timeout: 1000 });
const hasText = (locator, pattern, message) =>
  eventually(() => textOf(locator), (t) => (pattern instanceof RegExp ? pattern.test(t) : t.includes(pattern)), message);

/** Everything the page can reveal: text, attributes and input values, through shadow roots. */
function pageDump() {
  const out = [location.href, document.cookie];
  for (const store of [localStorage, sessionStorage]) {
    for (let i = 0; i < store.length; i += 1) out.push(store.key(i), store.getItem(store.key(i)));
  }
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      for (const attr of el.attributes) out.push(attr.value);
      if ('value' in el && typeof el.value === 'string') out.push(el.value);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  out.push(document.documentElement.outerHTML);
  walk(document);
  const shadowText = [];
  const texts = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) {
        shadowText.push(el.shadowRoot.textContent);
        texts(el.shadowRoot);
      }
    }
  };
  texts(document);
  return out.concat(shadowText).join('\n');
}

/** A browser with a fresh profile that records every request, response body and console line. */
async function openBrowser(allowedOrigins) {
  const profile = await mkdtemp(path.join(tmpdir(), 'llm-settings-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: config.chromium,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    colorScheme: 'light',
  });
  const record = { requests: [], bodies: [], console: [], foreign: [], pending: [] };
  context.on('request', (request) => {
    const url = request.url();
    record.requests.push(`${request.method()} ${url}`);
    const origin = new URL(url).origin;
    if (!allowedOrigins.includes(origin)) record.foreign.push(url);
  });
  context.on('response', (response) => {
    record.pending.push(
      response
        .body()
        .then((body) => record.bodies.push({ url: response.url(), text: body.toString('utf8') }))
        .catch(() => {}),
    );
  });
  const watch = (page) => {
    page.on('console', (msg) => record.console.push(msg.text()));
    page.on('pageerror', (error) => record.console.push(`page error: ${error.message}`));
  };
  context.on('page', watch);
  context.pages().forEach(watch);
  const close = async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  };
  return { context, record, close };
}

/** Runs `body` with a fresh browser; on failure saves the last page as failed-<scenario>.png. */
async function withBrowser(allowedOrigins, body) {
  const browser = await openBrowser(allowedOrigins);
  try {
    await body(browser);
  } catch (error) {
    const page = browser.context.pages().at(-1);
    if (page) {
      await mkdir(config.screenshots, { recursive: true });
      await page.screenshot({ path: path.join(config.screenshots, `failed-${config.scenario}.png`), fullPage: true }).catch(() => {});
    }
    throw error;
  } finally {
    await browser.close();
  }
}

/** The requests went only to allowed origins, and no planted secret left the service. */
async function checkTraffic(record, page, secrets) {
  await Promise.all(record.pending);
  check(record.foreign.length === 0, `the page requested other hosts: ${record.foreign.join(', ')}`);
  step(`all ${record.requests.length} requests went to the service${config.host ? ' or the host page' : ''}`);
  const dump = await page.evaluate(pageDump);
  for (const [name, secret] of Object.entries(secrets)) {
    check(!dump.includes(secret), `the ${name} key is in the page (DOM, input values, storage, cookies or URL)`);
    for (const { url, text } of record.bodies) check(!text.includes(secret), `the ${name} key is in the response of ${url}`);
    for (const line of record.console) check(!line.includes(secret), `the ${name} key was logged to the console`);
  }
  step(`no planted key in the DOM, storage, ${record.bodies.length} response bodies or the console`);
  const storage = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
  check(storage[0] === 0 && storage[1] === 0 && storage[2] === '', `the page stored something: ${JSON.stringify(storage)}`);
  step('nothing in localStorage, sessionStorage or cookies');
  const errors = record.console.filter((l) => /page error|Content Security Policy|Refused to/i.test(l));
  check(errors.length === 0, `errors in the console: ${errors.join(' | ')}`);
}

async function api(method, pathname, token, body) {
  const response = await fetch(config.service + pathname, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function screenshot(page, name) {
  await mkdir(config.screenshots, { recursive: true });
  const file = path.join(config.screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  step(`screenshot ${file}`);
}

/** Full-page screenshots at 1280 and 360 px; at 360 px nothing may overflow sideways. */
async function screenshots(page, name) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await screenshot(page, `${name}-1280`);
  await page.setViewportSize({ width: 360, height: 780 });
  await page.waitForTimeout(200);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `at 360 px the page is ${width} px wide`);
  step('nothing overflows at 360 px');
  await screenshot(page, `${name}-360`);
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.setViewportSize({ width: 1280, height: 900 });
  await screenshot(page, `${name}-1280-dark`);
  await page.emulateMedia({ colorScheme: 'light' });
}

const card = (page, provider) => page.locator(`li.card[data-provider="${provider}"]`);

// ---- Scenarios ----

async function userScenario() {
  await withBrowser([config.service], async ({ context, record }) => {
    const page = await context.newPage();
    await page.goto(`${config.service}/settings/#token=${config.tokens.user}`);
    await page.getByRole('heading', { name: 'Your keys' }).waitFor({ timeout: TIMEOUT });
    check(!page.url().includes('#') && !page.url().includes(config.tokens.user), `the token stayed in the address bar: ${page.url()}`);
    step('signed in from the URL fragment, which left the address bar');

    const offered = (await api('GET', '/users/me/llm-settings/providers', config.tokens.user)).body.providers;
    for (const p of offered) await hasText(card(page, p.id).locator('.card-title'), p.name, `provider ${p.id} shown as ${p.name}`);
    step(`every offered provider is listed by name (${offered.map((p) => p.name).join(', ')})`);

    const effective = page.locator('.effective');
    await hasText(effective, "your organization's key", 'calls use the instance key before the user has one');
    step("calls use: your organization's key");

    // OpenAI, by keyboard: open the form, paste the refused key, test it.
    const openai = card(page, 'openai');
    await openai.getByRole('button', { name: 'Add key for OpenAI' }).focus();
    await page.keyboard.press('Enter');
    const key = openai.getByLabel('API key', { exact: true });
    await eventually(() => key.evaluate((el) => el === el.getRootNode().activeElement), Boolean, 'the key field has focus after opening the form');
    await page.keyboard.type(config.keys.refused);
    await page.keyboard.press('Tab');
    await page.keyboard.type('gpt-4o-mini');
    await page.keyboard.press('Tab');
    await page.keyboard.type(config.fake.openai);
    await openai.getByRole('button', { name: 'Test connection' }).click();
    await hasText(openai.locator('.test-result'), /Failed: the key was refused \(\d+ ms\)/, 'a refused key is reported in plain words');
    step('a refused key: "the key was refused" with the latency');

    // A base URL the service refuses: the error sits next to the base URL field.
    const baseUrl = openai.getByLabel('Base URL (optional)');
    await key.fill(config.keys.valid);
    await baseUrl.fill('ftp://gateway.invalid');
    await page.keyboard.press('Enter');
    await eventually(() => baseUrl.getAttribute('aria-invalid'), (v) => v === 'true', 'the base URL field is marked invalid');
    const describedBy = await baseUrl.getAttribute('aria-describedby');
    const errorText = await openai.locator(`[id="${describedBy.split(' ')[1]}"]`).innerText();
    check(/url|http|scheme/i.test(errorText), `the base URL error explains itself: ${errorText}`);
    step(`an API error shown next to its field: "${errorText}"`);

    // Save the valid key by keyboard (Enter submits); the field empties, only the mask shows.
    await baseUrl.fill(config.fake.openai);
    await key.focus();
    const saved = page.waitForResponse((r) => r.url().endsWith('/llm-settings') && r.request().method() === 'POST');
    await page.keyboard.press('Enter');
    const created = await (await saved).json();
    await hasText(openai.locator('.mask'), created.api_key_last_4, 'the mask shows the last characters');
    check((await key.inputValue()) === '', 'the key field is empty after saving');
    const shown = await openai.locator('.mask').textContent();
    check(!shown.includes(config.keys.valid), 'the mask is not the key');
    step(`saved: the field is empty and only the mask "${shown}" is shown`);

    await openai.getByRole('button', { name: 'Test connection' }).click();
    await hasText(openai.locator('.test-result'), /Connection OK \(\d+ ms/, 'the stored key tests OK');
    await hasText(openai.locator('.last-test'), /Last test just now: Connection OK/, 'the stored outcome is shown');
    step('the stored key tests OK with its latency');
    await hasText(effective, 'your key', 'calls now use the user key');
    step('calls use: your key');

    // A second provider, then make it the default.
    const anthropic = card(page, 'anthropic');
    await anthropic.getByRole('button', { name: 'Add key for Anthropic' }).click();
    await anthropic.getByLabel('API key', { exact: true }).fill(config.keys.valid);
    await anthropic.getByLabel('Base URL (optional)').fill(config.fake.anthropic);
    await anthropic.getByRole('button', { name: 'Save' }).click();
    await anthropic.locator('.mask').waitFor({ timeout: TIMEOUT });
    check(await openai.locator('.badge-default').isVisible(), 'the first config is the default');
    check(!(await anthropic.locator('.badge-default').isVisible()), 'the second config is not the default');
    await anthropic.getByRole('button', { name: 'Make default' }).click();
    await eventually(() => anthropic.locator('.badge-default').isVisible(), Boolean, 'Anthropic becomes the default');
    await eventually(() => openai.locator('.badge-default').isVisible(), (v) => !v, 'OpenAI is no longer the default');
    await hasText(effective, /your key: Anthropic/, 'calls use the new default');
    step('set the default: the badge moves and calls use Anthropic');

    // Disable and enable again.
    await openai.getByRole('button', { name: 'Disable' }).click();
    await eventually(() => openai.locator('.badge-off').isVisible(), Boolean, 'OpenAI shows as disabled');
    check(await openai.getByRole('button', { name: 'Make default' }).isDisabled(), 'a disabled config cannot become the default');
    await openai.getByRole('button', { name: 'Enable' }).click();
    await eventually(() => openai.locator('.badge-off').isVisible(), (v) => !v, 'OpenAI is enabled again');
    step('disable and enable');

    // Task assignments.
    const tasks = page.locator('section.block', { has: page.getByRole('heading', { name: 'Task assignments' }) });
    await tasks.getByLabel('Task', { exact: true }).fill('bad task');
    await tasks.getByLabel('Provider', { exact: true }).selectOption('openai');
    await tasks.getByLabel('Model', { exact: true }).fill('gpt-4o-mini');
    await tasks.getByRole('button', { name: 'Save assignment' }).click();
    await eventually(() => tasks.getByLabel('Task', { exact: true }).getAttribute('aria-invalid'), (v) => v === 'true', 'an invalid task name is marked next to the field');
    await tasks.getByLabel('Task', { exact: true }).fill('summarize');
    await tasks.getByRole('button', { name: 'Save assignment' }).click();
    await hasText(tasks.locator('li.task[data-task="summarize"]'), /summarize\s*(uses\s*)?OpenAI · gpt-4o-mini/, 'the assignment is listed');
    step('a task assignment saved (and a bad task name refused next to its field)');

    await screenshots(page, 'user');

    // Delete with a confirmation: cancel first, then confirm.
    await anthropic.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor({ timeout: TIMEOUT });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    check(await anthropic.locator('.mask').isVisible(), 'cancelling keeps the config');
    await anthropic.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete Anthropic' }).click();
    await anthropic.getByRole('button', { name: 'Add key for Anthropic' }).waitFor({ timeout: TIMEOUT });
    const left = (await api('GET', '/users/me/llm-settings', config.tokens.user)).body.configs.map((c) => c.provider);
    check(left.join() === 'openai', `only openai is left: ${left}`);
    step('delete asks first; cancel keeps, confirm deletes');

    await tasks.getByRole('button', { name: 'Remove task summarize' }).click();
    await eventually(() => tasks.locator('li.task').count(), (n) => n === 0, 'the assignment is removed');
    step('a task assignment removed');

    await checkTraffic(record, page, config.keys);
  });
}

async function adminScenario() {
  await withBrowser([config.service], async ({ context, record }) => {
    const page = await context.newPage();
    await page.goto(`${config.service}/settings/`);
    // A token the service refuses sends the person back to the sign-in with a reason.
    await page.getByLabel('Access token').fill('not-a-valid-token');
    await page.keyboard.press('Enter');
    await hasText(page.locator('#token-error'), 'refused the token', 'a refused token is explained at the sign-in');
    step('a refused token: back to the sign-in, which says why');
    // The sign-in field, by keyboard.
    await page.getByLabel('Access token').fill(config.tokens.admin);
    await page.keyboard.press('Enter');
    const instanceTab = page.getByRole('tab', { name: 'Instance acme' });
    await page.getByRole('tab', { name: 'Your keys' }).focus();
    await page.keyboard.press('ArrowRight');
    await eventually(() => instanceTab.getAttribute('aria-selected'), (v) => v === 'true', 'the arrow key selects the instance tab');
    step('signed in with a pasted token; the instance tab opens from the keyboard');
    check((await page.getByLabel('Access token').inputValue()) === '', 'the token field is emptied');

    const panel = page.getByRole('tabpanel', { name: 'Instance acme' });
    const openai = panel.locator('li.card[data-provider="openai"]');
    await openai.locator('.mask').waitFor({ timeout: TIMEOUT });
    check(await openai.locator('.badge-default').isVisible(), 'the seeded instance config is its default');
    step(`the instance config shows its mask "${await openai.locator('.mask').textContent()}"`);

    await openai.getByLabel('Model').fill('gpt-4o');
    await openai.getByRole('button', { name: 'Save' }).click();
    // `gpt-4o` alone, not the `gpt-4o-mini` shown before the save.
    await hasText(openai.locator('.summary'), /gpt-4o(?![-\w])/, 'the new model shows');
    const stored = await eventually(
      async () => (await api('GET', '/instances/acme/llm-settings', config.tokens.admin)).body.configs,
      (configs) => configs.length === 1 && configs[0].model === 'gpt-4o',
      'the instance config has the new model',
    );
    check(stored.length === 1, `one instance config: ${JSON.stringify(stored)}`);
    step('an admin changed the instance model');

    await openai.getByRole('button', { name: 'Test connection' }).click();
    await hasText(openai.locator('.test-result'), /Connection OK \(\d+ ms/, 'the instance key tests OK');
    step('the instance key tests OK');

    await openai.getByLabel('API key', { exact: true }).fill(config.keys.refused);
    await openai.getByRole('button', { name: 'Save' }).click();
    await hasText(openai.locator('.test-result'), 'Saved.', 'the new key is saved');
    check((await openai.getByLabel('API key', { exact: true }).inputValue()) === '', 'the key field is empty after saving');
    await openai.getByRole('button', { name: 'Test connection' }).click();
    await hasText(openai.locator('.test-result'), 'the key was refused', 'the replaced key is refused');
    await hasText(openai.locator('.last-test'), 'the key was refused', 'the stored outcome says so');
    step('an admin replaced the instance key; its test is refused in plain words');

    const tasks = panel.locator('section.block', { has: page.getByRole('heading', { name: 'Task assignments' }) });
    await tasks.getByLabel('Task', { exact: true }).fill('classify');
    await tasks.getByLabel('Provider', { exact: true }).selectOption('openai');
    await tasks.getByLabel('Model', { exact: true }).fill('gpt-4o');
    await tasks.getByRole('button', { name: 'Save assignment' }).click();
    await tasks.locator('li.task[data-task="classify"]').waitFor({ timeout: TIMEOUT });
    step('an instance task assignment saved');

    check((await page.getByRole('tab', { name: 'Deployment' }).count()) === 0, 'an admin has no deployment tab');
    await screenshots(page, 'admin');
    await checkTraffic(record, page, config.keys);

    // A superadmin also manages the deployment's configs.
    const superPage = await context.newPage();
    await superPage.goto(`${config.service}/settings/#token=${config.tokens.superadmin}`);
    await superPage.getByRole('tab', { name: 'Deployment' }).click();
    const deployment = superPage.getByRole('tabpanel', { name: 'Deployment' });
    const globalOpenai = deployment.locator('li.card[data-provider="openai"]');
    await globalOpenai.getByRole('button', { name: 'Add key for OpenAI' }).click();
    await globalOpenai.getByLabel('API key', { exact: true }).fill(config.keys.valid);
    await globalOpenai.getByLabel('Base URL (optional)').fill(config.fake.openai);
    await globalOpenai.getByRole('button', { name: 'Save' }).click();
    await globalOpenai.locator('.mask').waitFor({ timeout: TIMEOUT });
    const global = (await api('GET', '/global/llm-settings', config.tokens.superadmin)).body.configs;
    check(global.length === 1 && global[0].provider === 'openai', `the global config was saved: ${JSON.stringify(global)}`);
    step('a superadmin saved a deployment key');

    await superPage.getByRole('tab', { name: 'Other instance' }).click();
    const other = superPage.getByRole('tabpanel', { name: 'Other instance' });
    await other.getByLabel('Instance id').fill('acme');
    await other.getByRole('button', { name: 'Open' }).click();
    await hasText(other.locator('li.card[data-provider="openai"] .summary'), 'gpt-4o', 'a superadmin opens any instance');
    step('a superadmin opens an instance by its id');
    await checkTraffic(record, superPage, config.keys);
  });
}

async function embedScenario() {
  const allowed = !config.refusing;
  await withBrowser([config.service, config.host], async ({ context, record }) => {
    const page = await context.newPage();
    await page.goto(`${config.host}/host.html?svc=${encodeURIComponent(config.service)}#token=${config.tokens.user}`);
    await page.getByRole('heading', { name: 'Host application' }).waitFor({ timeout: TIMEOUT });
    await eventually(() => page.evaluate(() => Boolean(customElements.get('llm-settings'))), Boolean, 'the component script loads from the service');
    step('the component loads on a page of another origin');
    if (allowed) {
      await page.getByRole('heading', { name: 'Your keys' }).waitFor({ timeout: TIMEOUT });
      const openai = card(page, 'openai');
      await openai.getByRole('button', { name: 'Add key for OpenAI' }).click();
      await openai.getByLabel('API key', { exact: true }).fill(config.keys.valid);
      await openai.getByLabel('Base URL (optional)').fill(config.fake.openai);
      await openai.getByRole('button', { name: 'Save' }).click();
      await openai.locator('.mask').waitFor({ timeout: TIMEOUT });
      await openai.getByRole('button', { name: 'Test connection' }).click();
      await hasText(openai.locator('.test-result'), /Connection OK/, 'the test works cross-origin');
      const configs = (await api('GET', '/users/me/llm-settings', config.tokens.user)).body.configs;
      check(configs.length === 1, 'the key was saved through the embedded component');
      step('with CORS allowed: the embedded component lists, saves and tests');
      await screenshot(page, 'embedded-1280');
    } else {
      const alert = page.getByRole('alert').filter({ hasText: /could not reach the settings service/i });
      await alert.waitFor({ timeout: TIMEOUT });
      check((await page.locator('li.card').count()) === 0, 'no provider is shown');
      step(`without CORS: refused, and the component says so ("${(await textOf(alert)).slice(0, 60)}…")`);
    }
    await checkTraffic(record, page, config.keys);
  });
}

/** The service serves the component; says so plainly when it does not. */
async function requireServed() {
  const response = await fetch(`${config.service}/settings/llm-settings.js`).catch(() => ({ status: 0 }));
  check(
    response.status === 200,
    `GET /settings/llm-settings.js answered ${response.status}: this service does not serve the settings page (crates/http/web/SERVING.md says how it must)`,
  );
}

const scenarios = { user: userScenario, admin: adminScenario, embed: embedScenario };

try {
  const run = scenarios[config.scenario];
  if (!run) throw new Failure(`unknown scenario ${config.scenario}`);
  await requireServed();
  await run();
  console.log(`scenario ${config.scenario}: passed`);
} catch (error) {
  console.log(`not ok - ${error instanceof Failure ? error.message : error.stack}`);
  console.log(`(the page as it was: ${path.join(config.screenshots, `failed-${config.scenario}.png`)})`);
  process.exit(1);
}
