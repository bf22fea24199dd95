'use strict';

const fs = require('fs/promises');
const path = require('path');

/**
 * Read INI-style config files with sections, comments, quoted values,
 * ${VAR} interpolation and an `include = other.ini` directive.
 *
 *   [server]
 *   host = 0.0.0.0
 *   port = 8080          ; trailing comments are allowed
 *   url  = http://${server.host}:${server.port}
 */

class ConfigError extends Error {
  constructor(message, file, line) {
    super(file ? `${file}:${line}: ${message}` : message);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
  }
}

function unquote(raw) {
  const value = raw.trim();
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
    const inner = value.slice(1, -1);
    return value[0] === '"' ? inner.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1') : inner;
  }
  // strip an unquoted trailing comment
  return value.replace(/\s+[;#].*$/, '');
}

function convert(value) {
  if (typeof value !== 'string') return value;
  if (/^(true|yes|on)$/i.test(value)) return true;
  if (/^(false|no|off)$/i.test(value)) return false;
  if (/^-?\d+$/.test(value)) return parseInt(value, 10);
  if (/^-?\d*\.\d+$/.test(value)) return parseFloat(value);
  if (/^\[.*\]$/.test(value)) {
    return value
      .slice(1, -1)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map(convert);
  }
  return value;
}

/**
 * Parse INI text into { section: { key: value } }. Keys before the first
 * section header go into the "default" section.
 */
function parseIni(text, file = null) {
  const result = { default: {} };
  let section = 'default';
  const includes = [];

  text.split(/\r?\n/).forEach((rawLine, idx) => {
    const line = rawLine.trim();
    const lineNo = idx + 1;
    if (!line || line.startsWith(';') || line.startsWith('#')) return;

    const header = line.match(/^\[([^\]]+)\]$/);
    if (header) {
      section = header[1].trim();
      if (!/^[\w.-]+$/.test(section)) throw new ConfigError(`bad section name "${section}"`, file, lineNo);
      result[section] = result[section] || {};
      return;
    }

    const eq = line.indexOf('=');
    if (eq === -1) throw new ConfigError(`expected "key = value", got "${line}"`, file, lineNo);
    const key = line.slice(0, eq).trim();
    const value = unquote(line.slice(eq + 1));
    if (!key) throw new ConfigError('empty key', file, lineNo);

    if (key === 'include' && section === 'default') {
      includes.push(value);
      return;
    }
    result[section][key] = value;
  });

  return { sections: result, includes };
}

/** Replace ${section.key} and ${ENV_VAR} references, detecting cycles. */
function interpolate(sections, env = process.env) {
  const resolving = new Set();

  const resolve = (section, key) => {
    const ref = `${section}.${key}`;
    const raw = sections[section] && sections[section][key];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string') return raw;
    if (resolving.has(ref)) throw new ConfigError(`circular reference through ${ref}`);
    resolving.add(ref);
    const out = raw.replace(/\$\{([^}]+)\}/g, (_, name) => {
      const dot = name.indexOf('.');
      const value = dot === -1 ? env[name] : resolve(name.slice(0, dot), name.slice(dot + 1));
      if (value === undefined) throw new ConfigError(`undefined variable \${${name}} in ${ref}`);
      return String(value);
    });
    resolving.delete(ref);
    sections[section][key] = out;
    return out;
  };

  for (const section of Object.keys(sections)) {
    for (const key of Object.keys(sections[section])) resolve(section, key);
  }
  for (const section of Object.values(sections)) {
    for (const key of Object.keys(section)) section[key] = convert(section[key]);
  }
  return sections;
}

/**
 * Load a config file plus its includes. Later files override earlier ones
 * section by section.
 */
async function loadConfig(file, { env = process.env, seen = new Set(), raw = false } = {}) {
  const abs = path.resolve(file);
  if (seen.has(abs)) throw new ConfigError(`include cycle at ${abs}`);
  seen.add(abs);

  const text = await fs.readFile(abs, 'utf8');
  const { sections, includes } = parseIni(text, abs);
  const merged = {};

  for (const inc of includes) {
    const child = await loadConfig(path.resolve(path.dirname(abs), inc), { env, seen, raw: true });
    for (const [name, values] of Object.entries(child)) merged[name] = { ...merged[name], ...values };
  }
  for (const [name, values] of Object.entries(sections)) merged[name] = { ...merged[name], ...values };

  // includes are merged raw; only the top-level call interpolates
  return raw ? merged : interpolate(merged, env);
}

function get(config, dotted, fallback) {
  const [section, key] = dotted.includes('.') ? dotted.split(/\.(.+)/) : ['default', dotted];
  const value = config[section] && config[section][key];
  return value === undefined ? fallback : value;
}

module.exports = { parseIni, interpolate, loadConfig, get, ConfigError };
