'use strict';

/**
 * Semantic version parsing, comparison and a subset of npm-style ranges:
 * exact versions, comparators (>=1.2.0 <2.0.0), caret (^1.2.3),
 * tilde (~1.2.3), x-ranges (1.2.x) and "||" alternatives.
 */

const SEMVER_RE =
  /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$/;

function parse(version) {
  const m = SEMVER_RE.exec(String(version).trim());
  if (!m) return null;
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
    prerelease: m[4] ? m[4].split('.') : [],
    build: m[5] || '',
  };
}

function comparePre(a, b) {
  // a version without prerelease has higher precedence
  if (!a.length && !b.length) return 0;
  if (!a.length) return 1;
  if (!b.length) return -1;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === undefined) return -1;
    if (b[i] === undefined) return 1;
    const na = /^\d+$/.test(a[i]);
    const nb = /^\d+$/.test(b[i]);
    if (na && nb) {
      const d = Number(a[i]) - Number(b[i]);
      if (d) return Math.sign(d);
    } else if (na !== nb) {
      return na ? -1 : 1;
    } else if (a[i] !== b[i]) {
      return a[i] < b[i] ? -1 : 1;
    }
  }
  return 0;
}

function compare(a, b) {
  const va = typeof a === 'string' ? parse(a) : a;
  const vb = typeof b === 'string' ? parse(b) : b;
  if (!va || !vb) throw new TypeError(`invalid version: ${!va ? a : b}`);
  return (
    Math.sign(va.major - vb.major) ||
    Math.sign(va.minor - vb.minor) ||
    Math.sign(va.patch - vb.patch) ||
    comparePre(va.prerelease, vb.prerelease)
  );
}

/** Expand shorthand like ^1.2.3 into a list of [op, version] comparators. */
function expand(token) {
  const m = /^(\^|~|>=|<=|>|<|=)?\s*v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(-[\w.-]+)?$/.exec(token);
  if (!m) throw new Error(`invalid range token: ${token}`);
  const [, op = '', M, mi, p, pre = ''] = m;
  const wild = (s) => s === undefined || /^[xX*]$/.test(s);
  const [maj, min, pat] = [M, mi, p].map((s) => (wild(s) ? null : Number(s)));

  if (maj === null) return [['>=', '0.0.0']];
  if (min === null || pat === null) {
    // partial version: 1 or 1.2 covers [lower, upper)
    const lower = `${maj}.${min ?? 0}.0`;
    const upper = min === null ? `${maj + 1}.0.0` : `${maj}.${min + 1}.0`;
    if (op === '<' || op === '>=') return [[op, lower]];
    if (op === '>') return [['>=', upper]];
    if (op === '<=') return [['<', upper]];
    return [['>=', lower], ['<', upper]];
  }

  const base = `${maj}.${min}.${pat}${pre}`;
  if (op === '^') {
    if (maj > 0) return [['>=', base], ['<', `${maj + 1}.0.0`]];
    if (min > 0) return [['>=', base], ['<', `0.${min + 1}.0`]];
    return [['>=', base], ['<', `0.0.${pat + 1}`]];
  }
  if (op === '~') return [['>=', base], ['<', `${maj}.${min + 1}.0`]];
  return [[op || '=', base]];
}

const OPS = {
  '=': (c) => c === 0,
  '>': (c) => c > 0,
  '>=': (c) => c >= 0,
  '<': (c) => c < 0,
  '<=': (c) => c <= 0,
};

function satisfies(version, range) {
  const v = parse(version);
  if (!v) return false;
  return range.split('||').some((alt) => {
    const tokens = alt.trim().replace(/(>=|<=|>|<|=)\s+/g, '$1').split(/\s+/).filter(Boolean);
    const comparators = tokens.length ? tokens.flatMap(expand) : [['>=', '0.0.0']];
    // prereleases only match when a comparator names the same major.minor.patch
    if (v.prerelease.length) {
      const allowed = comparators.some(([, c]) => {
        const cv = parse(c);
        return cv.prerelease.length && cv.major === v.major && cv.minor === v.minor && cv.patch === v.patch;
      });
      if (!allowed) return false;
    }
    return comparators.every(([op, c]) => OPS[op](compare(v, c)));
  });
}

function maxSatisfying(versions, range) {
  return versions.filter((v) => satisfies(v, range)).sort(compare).pop() || null;
}

function bump(version, level, preid = 'rc') {
  const v = parse(version);
  if (!v) throw new TypeError(`invalid version: ${version}`);
  switch (level) {
    case 'major':
      return `${v.major + 1}.0.0`;
    case 'minor':
      return `${v.major}.${v.minor + 1}.0`;
    case 'patch':
      return v.prerelease.length ? `${v.major}.${v.minor}.${v.patch}` : `${v.major}.${v.minor}.${v.patch + 1}`;
    case 'prerelease': {
      const [id, n] = v.prerelease;
      if (id === preid && /^\d+$/.test(n)) return `${v.major}.${v.minor}.${v.patch}-${preid}.${Number(n) + 1}`;
      return `${v.major}.${v.minor}.${v.patch + 1}-${preid}.0`;
    }
    default:
      throw new Error(`unknown bump level: ${level}`);
  }
}

module.exports = { parse, compare, satisfies, maxSatisfying, bump };

if (require.main === module) {
  const { test } = require('node:test');
  const assert = require('node:assert/strict');

  test('orders versions including prereleases', () => {
    const sorted = ['1.0.0', '1.0.0-alpha.1', '0.9.9', '1.0.0-alpha', '1.0.0-beta'].sort(compare);
    assert.deepEqual(sorted, ['0.9.9', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-beta', '1.0.0']);
  });

  test('caret and tilde ranges', () => {
    assert.ok(satisfies('1.4.2', '^1.2.3'));
    assert.ok(!satisfies('2.0.0', '^1.2.3'));
    assert.ok(!satisfies('0.3.0', '^0.2.1'));
    assert.ok(satisfies('1.2.9', '~1.2.3'));
    assert.ok(!satisfies('1.3.0', '~1.2.3'));
  });

  test('alternatives and prerelease rules', () => {
    assert.ok(satisfies('3.1.0', '^1.0.0 || >=3.0.0 <4'));
    assert.ok(!satisfies('2.0.0-rc.1', '>=1.0.0'));
    assert.ok(satisfies('2.0.0-rc.2', '>=2.0.0-rc.1'));
    assert.equal(maxSatisfying(['1.2.0', '1.5.3', '2.0.0'], '1.x'), '1.5.3');
  });

  test('bumping', () => {
    assert.equal(bump('1.2.3', 'minor'), '1.3.0');
    assert.equal(bump('1.2.3-rc.0', 'prerelease'), '1.2.3-rc.1');
    assert.equal(bump('1.2.3-rc.4', 'patch'), '1.2.3');
  });
}
