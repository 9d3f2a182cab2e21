// Building DOM nodes without HTML strings: text always goes in as text, never as markup.

/**
 * Creates an element. `props`: `class`, `text`, `on<event>` listeners, `dataset`, and
 * attributes (`true` sets an empty attribute; `null`, `undefined` and `false` are skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

let counter = 0;

/** A document-unique id with a readable prefix, for label/aria references. */
export function uid(prefix) {
  counter += 1;
  return `${prefix.replace(/[^a-z0-9_-]/gi, '-')}-${counter}`;
}

/** Shows `message` in `el` (hidden when empty). */
export function say(el, message) {
  el.textContent = message ?? '';
  el.hidden = !message;
}

/** Disables `button` and marks `region` busy while `work` runs. */
export async function busy(button, region, work) {
  button.disabled = true;
  region?.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    region?.removeAttribute('aria-busy');
  }
}
