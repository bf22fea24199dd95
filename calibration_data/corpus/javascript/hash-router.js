// Tiny client-side router. It only deals with strings (paths, query strings),
// so the history/hashchange wiring lives in a thin adapter at the bottom.

const PARAM_RE = /:([A-Za-z_][A-Za-z0-9_]*)(\?)?/g;

/**
 * Compile a route pattern such as "/users/:id/posts/:postId?" into a regex
 * and the ordered list of parameter names.
 * @param {string} pattern
 */
function compile(pattern) {
  const keys = [];
  let source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\/\*$/, '(?:/(?<wild>.*))?')
    .replace(PARAM_RE, (_, name, optional) => {
      keys.push(name);
      return optional ? '?([^/]+)?' : '([^/]+)';
    });
  if (!source.endsWith('/?')) source += '/?';
  return { regex: new RegExp(`^${source}$`), keys };
}

export function parseQuery(qs) {
  const out = {};
  if (!qs) return out;
  for (const part of qs.replace(/^\?/, '').split('&')) {
    if (!part) continue;
    const [rawKey, rawVal = ''] = part.split('=');
    const key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
    const val = decodeURIComponent(rawVal.replace(/\+/g, ' '));
    if (key in out) {
      out[key] = [].concat(out[key], val);
    } else {
      out[key] = val;
    }
  }
  return out;
}

export class Router {
  constructor({ base = '' } = {}) {
    this.base = base.replace(/\/$/, '');
    this.routes = [];
    this.guards = [];
    this.notFound = () => null;
    this.current = null;
  }

  /**
   * @param {string} pattern
   * @param {(ctx: object) => any} handler
   * @param {{ name?: string }} [meta]
   */
  add(pattern, handler, meta = {}) {
    const { regex, keys } = compile(pattern);
    this.routes.push({ pattern, regex, keys, handler, name: meta.name });
    return this;
  }

  /** Guards run before every handler; return false or a path to redirect. */
  beforeEach(guard) {
    this.guards.push(guard);
    return this;
  }

  otherwise(handler) {
    this.notFound = handler;
    return this;
  }

  match(url) {
    const [pathPart, query = ''] = url.split('?');
    let path = pathPart.startsWith(this.base) ? pathPart.slice(this.base.length) : pathPart;
    if (!path.startsWith('/')) path = '/' + path;

    for (const route of this.routes) {
      const m = route.regex.exec(path);
      if (!m) continue;
      const params = {};
      route.keys.forEach((key, i) => {
        if (m[i + 1] !== undefined) params[key] = decodeURIComponent(m[i + 1]);
      });
      if (m.groups && m.groups.wild !== undefined) params.wild = m.groups.wild;
      return { route, params, query: parseQuery(query), path };
    }
    return null;
  }

  /**
   * Resolve a URL, running guards, and call the matching handler.
   * Redirect loops are cut off after a few hops.
   */
  async navigate(url, hops = 0) {
    if (hops > 5) throw new Error(`too many redirects while resolving ${url}`);
    const hit = this.match(url);
    if (!hit) {
      this.current = { path: url, params: {}, query: {} };
      return this.notFound(this.current);
    }

    const ctx = { ...hit, from: this.current, name: hit.route.name };
    for (const guard of this.guards) {
      const verdict = await guard(ctx);
      if (verdict === false) return undefined;
      if (typeof verdict === 'string') return this.navigate(verdict, hops + 1);
    }

    this.current = ctx;
    return hit.route.handler(ctx);
  }

  /** Build a URL from a named route and params. */
  href(name, params = {}, query = {}) {
    const route = this.routes.find((r) => r.name === name);
    if (!route) throw new Error(`no route named "${name}"`);
    let path = route.pattern.replace(PARAM_RE, (_, key) =>
      params[key] != null ? encodeURIComponent(params[key]) : ''
    );
    path = path.replace(/\/+$/, '') || '/';
    const qs = Object.entries(query)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
    return this.base + path + (qs ? `?${qs}` : '');
  }
}

/**
 * Wire a router to window.location.hash. Kept separate so the router
 * itself can be tested without a browser.
 */
export function listenToHash(router, win = globalThis.window) {
  if (!win) return () => {};
  const onChange = () => router.navigate(win.location.hash.slice(1) || '/');
  win.addEventListener('hashchange', onChange);
  onChange();
  return () => win.removeEventListener('hashchange', onChange);
}
