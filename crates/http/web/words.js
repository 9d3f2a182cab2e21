// What the service's codes mean, in plain words.

const FAILURES = {
  invalid_credentials: 'the key was refused',
  permission_denied: 'the key is not allowed to do this',
  quota_exhausted: 'the account has no quota or credit left',
  not_found: 'the model or endpoint was not found',
  provider_overloaded: 'the provider is overloaded, try again later',
  provider_error: 'the provider had an internal error',
  unreachable: 'could not reach the host',
  timeout: 'the host did not answer in time',
  invalid_response: "the host did not answer like this provider's API",
  blocked_by_policy: "the service's outbound rules do not allow this address",
};

/** Why a connection test failed, e.g. "rate limited, retry in 20 s". */
export function failureInWords(failure, retryAfterSeconds) {
  if (failure === 'rate_limited') {
    return retryAfterSeconds != null ? `rate limited, retry in ${retryAfterSeconds} s` : 'rate limited, retry later';
  }
  return FAILURES[failure] ?? 'the test failed';
}

/** Whose key a call uses, from the effective view's `source.owner`. */
export function sourceInWords(owner) {
  switch (owner) {
    case 'user':
      return 'your key';
    case 'instance':
      return "your organization's key";
    case 'global':
      return "the deployment's key";
    default:
      return 'a key the service chose';
  }
}

/** "120 ms" or "1.4 s". */
export function duration(ms) {
  if (typeof ms !== 'number') return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** "just now", "5 min ago", "3 h ago", or the date. */
export function ago(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(then).toLocaleDateString();
}

/** A one-line account of a test result (live or stored as `last_test`). */
export function testInWords(result) {
  const took = duration(result.latency_ms);
  if (result.success) {
    const model = result.model_available ? `, model ${result.model_available} available` : '';
    return `Connection OK (${took}${model})`;
  }
  return `Failed: ${failureInWords(result.failure, result.retry_after_seconds)} (${took})`;
}

/** The message for an API error that concerns no particular field. */
export function errorInWords(error) {
  if (error.unreachable) {
    return `${capitalize(error.message)}. If this page is on another site, the service must allow its origin (LLM_SETTINGS_CORS_ORIGINS).`;
  }
  if (error.status === 401) return 'The token was refused (missing, expired or invalid). Sign in again.';
  if (error.status === 403) return `Not allowed: ${error.message}`;
  return capitalize(error.message);
}

export function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/** An error message for the field it is shown next to: "base_url must …" → "The base URL must …". */
export function fieldMessage(message, field, label) {
  if (!message) return 'Invalid value.';
  if (label && message.startsWith(`${field} `)) return `${label}${message.slice(field.length)}`;
  return capitalize(message);
}
