'use strict';

/**
 * Mustache-flavoured template engine compiled to closures.
 *
 *   {{ name }}            escaped output, dotted paths allowed
 *   {{{ html }}}          raw output
 *   {{ price | money }}   filters, chainable: {{ x | trim | upper }}
 *   {{#if cond}}...{{else}}...{{/if}}
 *   {{#each items as item}}...{{@index}}...{{/each}}
 *   {{> partialName}}
 */

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (v) => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]);

const TAG_RE = /\{\{\{\s*([\s\S]+?)\s*\}\}\}|\{\{\s*([#/>@]?)\s*([\s\S]+?)\s*\}\}/g;

function lookup(scope, path) {
  if (path === '.' || path === 'this') return scope.this;
  const parts = path.split('.');
  let value = scope;
  for (const part of parts) {
    if (value == null) return undefined;
    value = value[part];
  }
  return value;
}

/** Turn the template string into a nested tree of nodes. */
function parse(src) {
  const root = { type: 'root', children: [] };
  const stack = [root];
  let last = 0;
  let m;

  const top = () => stack[stack.length - 1];
  // once {{else}} is seen, following nodes go to the else branch
  const target = () => top().elseChildren || top().children;

  TAG_RE.lastIndex = 0;
  while ((m = TAG_RE.exec(src))) {
    if (m.index > last) target().push({ type: 'text', value: src.slice(last, m.index) });
    last = TAG_RE.lastIndex;

    if (m[1] !== undefined) {
      target().push({ type: 'var', expr: m[1], raw: true });
      continue;
    }

    const sigil = m[2];
    const body = m[3];
    if (sigil === '#') {
      const [kind, ...rest] = body.split(/\s+/);
      const node = { type: kind, arg: rest.join(' '), children: [], elseChildren: null };
      target().push(node);
      stack.push(node);
    } else if (sigil === '/') {
      const node = stack.pop();
      if (!node || node.type !== body) {
        throw new SyntaxError(`unexpected {{/${body}}}, open block is ${node ? node.type : 'none'}`);
      }
    } else if (sigil === '>') {
      target().push({ type: 'partial', name: body });
    } else if (sigil === '@') {
      target().push({ type: 'meta', name: body });
    } else if (body === 'else') {
      const node = top();
      if (node.type !== 'if') throw new SyntaxError('{{else}} outside of {{#if}}');
      node.elseChildren = [];
    } else {
      target().push({ type: 'var', expr: body, raw: false });
    }
  }

  if (stack.length > 1) throw new SyntaxError(`unclosed {{#${top().type}}} block`);
  if (last < src.length) root.children.push({ type: 'text', value: src.slice(last) });
  return root;
}

class Engine {
  constructor() {
    this.filters = {
      upper: (s) => String(s).toUpperCase(),
      lower: (s) => String(s).toLowerCase(),
      trim: (s) => String(s).trim(),
      json: (v) => JSON.stringify(v),
      money: (n) => `$${Number(n).toFixed(2)}`,
      default: (v, fallback) => (v == null || v === '' ? fallback : v),
    };
    this.partials = new Map();
    this.cache = new Map();
  }

  registerFilter(name, fn) {
    this.filters[name] = fn;
    return this;
  }

  registerPartial(name, src) {
    this.partials.set(name, src);
    return this;
  }

  evaluate(expr, scope) {
    const [head, ...filters] = expr.split('|').map((s) => s.trim());
    let value = /^(['"]).*\1$/.test(head) ? head.slice(1, -1) : lookup(scope, head);
    for (const f of filters) {
      const [name, ...args] = f.split(/\s+/);
      const fn = this.filters[name];
      if (!fn) throw new Error(`unknown filter "${name}"`);
      value = fn(value, ...args.map((a) => a.replace(/^['"]|['"]$/g, '')));
    }
    return value;
  }

  renderNodes(nodes, scope, meta) {
    let out = '';
    for (const node of nodes) {
      switch (node.type) {
        case 'text':
          out += node.value;
          break;
        case 'var': {
          const v = this.evaluate(node.expr, scope);
          if (v != null) out += node.raw ? String(v) : escape(v);
          break;
        }
        case 'meta':
          out += meta && node.name in meta ? meta[node.name] : '';
          break;
        case 'if': {
          const truthy = (v) => (Array.isArray(v) ? v.length > 0 : Boolean(v));
          if (truthy(this.evaluate(node.arg, scope))) out += this.renderNodes(node.children, scope, meta);
          else if (node.elseChildren) out += this.renderNodes(node.elseChildren, scope, meta);
          break;
        }
        case 'each': {
          const [listExpr, , alias = 'this'] = node.arg.split(/\s+/);
          const list = this.evaluate(listExpr, scope) || [];
          list.forEach((item, index) => {
            const child = Object.create(scope);
            child[alias] = item;
            child.this = item;
            const m = { index, first: index === 0, last: index === list.length - 1 };
            out += this.renderNodes(node.children, child, m);
          });
          break;
        }
        case 'partial': {
          const src = this.partials.get(node.name);
          if (src === undefined) throw new Error(`missing partial "${node.name}"`);
          out += this.renderNodes(this.compile(src).children, scope, meta);
          break;
        }
        default:
          throw new Error(`unknown block type "${node.type}"`);
      }
    }
    return out;
  }

  compile(src) {
    let tree = this.cache.get(src);
    if (!tree) {
      tree = parse(src);
      this.cache.set(src, tree);
    }
    return tree;
  }

  render(src, data = {}) {
    return this.renderNodes(this.compile(src).children, data, null);
  }
}

module.exports = { Engine, escape, parse };
