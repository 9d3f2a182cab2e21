// The service's native settings API, for one owner at a time.

/** A call that failed: the service's error body (`detail`, `error_code`, `field`) or no answer. */
export class ApiError extends Error {
  constructor(status, body, base) {
    const detail = typeof body?.detail === 'string' ? body.detail : null;
    super(detail ?? (status ? `the service answered ${status}` : `could not reach the settings service at ${base}`));
    this.name = 'ApiError';
    /** HTTP status; 0 when the service could not be reached (network, CORS). */
    this.status = status;
    this.code = typeof body?.error_code === 'string' ? body.error_code : null;
    this.field = typeof body?.field === 'string' ? body.field : null;
  }

  get unreachable() {
    return this.status === 0;
  }
}

/** The claims of a JWT, read only to decide which views to offer (the service decides access). */
export function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return {
      sub: typeof claims.sub === 'string' ? claims.sub : null,
      roles: Array.isArray(claims.roles) ? claims.roles.filter((r) => typeof r === 'string') : [],
      instance: typeof claims.instance === 'string' ? claims.instance : null,
    };
  } catch {
    return { sub: null, roles: [], instance: null };
  }
}

/** Sends requests to the service at `base` with a bearer token from `token()`. */
export class Client {
  constructor(base, token, onUnauthorized = () => {}) {
    this.base = base.replace(/\/+$/, '');
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = await this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = {
      method,
      headers,
      mode: 'cors',
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
      referrerPolicy: 'no-referrer',
    };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.base + path, init);
    } catch {
      throw new ApiError(0, null, this.base);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.status === 401) this.onUnauthorized();
    if (!response.ok) throw new ApiError(response.status, data, this.base);
    return data;
  }
}

/** Whose settings a view manages. */
export const Owner = {
  user: () => ({ kind: 'user', id: null, path: '/users/me/llm-settings' }),
  instance: (id) => ({ kind: 'instance', id, path: `/instances/${encodeURIComponent(id)}/llm-settings` }),
  global: () => ({ kind: 'global', id: null, path: '/global/llm-settings' }),
};

/** The native API of one owner: `/users/me/llm-settings`, `/instances/{id}/…` or `/global/…`. */
export class OwnerSettings {
  constructor(client, owner) {
    this.client = client;
    this.owner = owner;
  }

  #call(method, rest, body) {
    return this.client.request(method, this.owner.path + rest, body);
  }

  providers() {
    return this.#call('GET', '/providers');
  }

  async configs() {
    return (await this.#call('GET', '')).configs ?? [];
  }

  create(body) {
    return this.#call('POST', '', body);
  }

  update(id, body) {
    return this.#call('PATCH', `/${encodeURIComponent(id)}`, body);
  }

  remove(id) {
    return this.#call('DELETE', `/${encodeURIComponent(id)}`);
  }

  setDefault(id) {
    return this.#call('POST', `/${encodeURIComponent(id)}/set-default`);
  }

  test(body) {
    return this.#call('POST', '/test', body);
  }

  async assignments() {
    return (await this.#call('GET', '/task-assignments')).assignments ?? [];
  }

  async saveAssignments(assignments) {
    return (await this.#call('PUT', '/task-assignments', { assignments })).assignments ?? [];
  }

  removeAssignment(task) {
    return this.#call('DELETE', `/task-assignments/${encodeURIComponent(task)}`);
  }

  /** What a call would use (user owner only). */
  effective() {
    return this.#call('GET', '/effective');
  }
}
