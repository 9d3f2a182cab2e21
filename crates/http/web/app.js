// The standalone page: a sign-in in front of <llm-settings>. The token lives in this module's
// memory only: never in storage, cookies, the DOM or the address bar.

let token = null;

// A token in the fragment (#token=…) signs in; the fragment leaves the address bar at once.
const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
if (location.hash) history.replaceState(null, '', location.pathname + location.search);

await import('./llm-settings.js');
const { claimsOf } = await import('./api.js');

const form = document.getElementById('sign-in');
const input = document.getElementById('token');
const error = document.getElementById('token-error');
const session = document.getElementById('session');
const who = document.getElementById('who');
const main = document.getElementById('content');
let settings = null;

function signIn(value) {
  token = value;
  const { sub, roles, instance } = claimsOf(token);
  who.textContent = sub
    ? `Signed in as ${sub}${roles.length ? ` (${roles.join(', ')}${instance ? ` of ${instance}` : ''})` : ''}`
    : 'Signed in';
  settings = document.createElement('llm-settings');
  settings.setAttribute('api-base', new URL('../', import.meta.url).href);
  settings.tokenProvider = async () => token;
  settings.addEventListener('llm-settings-unauthorized', () => signOut('The service refused the token (expired or invalid). Paste a new one.'));
  form.hidden = true;
  session.hidden = false;
  main.append(settings);
}

function signOut(message = '') {
  token = null;
  settings?.remove();
  settings = null;
  session.hidden = true;
  form.hidden = false;
  error.textContent = message;
  error.hidden = !message;
  input.focus();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const value = input.value.trim();
  input.value = '';
  if (!value) {
    error.textContent = 'Paste a token first.';
    error.hidden = false;
    input.focus();
    return;
  }
  error.hidden = true;
  signIn(value);
});
document.getElementById('sign-out').addEventListener('click', () => signOut());

if (fromFragment) signIn(fromFragment);
else signOut();
