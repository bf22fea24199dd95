'use strict';

/**
 * Dense matrix helpers on plain arrays of arrays. Good enough for small
 * linear systems, transforms and teaching; not a replacement for BLAS.
 */

const EPS = 1e-12;

function shape(m) {
  return [m.length, m.length ? m[0].length : 0];
}

function zeros(rows, cols) {
  return Array.from({ length: rows }, () => new Array(cols).fill(0));
}

function identity(n) {
  const m = zeros(n, n);
  for (let i = 0; i < n; i++) m[i][i] = 1;
  return m;
}

function clone(m) {
  return m.map((row) => row.slice());
}

function transpose(m) {
  const [r, c] = shape(m);
  const out = zeros(c, r);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) out[j][i] = m[i][j];
  }
  return out;
}

function add(a, b) {
  assertSameShape(a, b);
  return a.map((row, i) => row.map((v, j) => v + b[i][j]));
}

function scale(m, k) {
  return m.map((row) => row.map((v) => v * k));
}

function multiply(a, b) {
  const [ar, ac] = shape(a);
  const [br, bc] = shape(b);
  if (ac !== br) throw new Error(`cannot multiply ${ar}x${ac} by ${br}x${bc}`);
  const out = zeros(ar, bc);
  // i-k-j loop order keeps the inner loop walking rows contiguously
  for (let i = 0; i < ar; i++) {
    const outRow = out[i];
    for (let k = 0; k < ac; k++) {
      const aik = a[i][k];
      if (aik === 0) continue;
      const bRow = b[k];
      for (let j = 0; j < bc; j++) outRow[j] += aik * bRow[j];
    }
  }
  return out;
}

function assertSameShape(a, b) {
  const [ar, ac] = shape(a);
  const [br, bc] = shape(b);
  if (ar !== br || ac !== bc) throw new Error(`shape mismatch: ${ar}x${ac} vs ${br}x${bc}`);
}

/**
 * LU decomposition with partial pivoting: P*A = L*U.
 * Returns the packed LU matrix, the permutation and its sign.
 */
function luDecompose(m) {
  const n = m.length;
  const lu = clone(m);
  const perm = Array.from({ length: n }, (_, i) => i);
  let sign = 1;

  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(lu[r][col]) > Math.abs(lu[pivot][col])) pivot = r;
    }
    if (Math.abs(lu[pivot][col]) < EPS) return { lu, perm, sign, singular: true };
    if (pivot !== col) {
      [lu[pivot], lu[col]] = [lu[col], lu[pivot]];
      [perm[pivot], perm[col]] = [perm[col], perm[pivot]];
      sign = -sign;
    }
    for (let r = col + 1; r < n; r++) {
      const factor = (lu[r][col] /= lu[col][col]);
      for (let c = col + 1; c < n; c++) lu[r][c] -= factor * lu[col][c];
    }
  }
  return { lu, perm, sign, singular: false };
}

function determinant(m) {
  const [r, c] = shape(m);
  if (r !== c) throw new Error('determinant requires a square matrix');
  const { lu, sign, singular } = luDecompose(m);
  if (singular) return 0;
  let det = sign;
  for (let i = 0; i < r; i++) det *= lu[i][i];
  return det;
}

/** Solve A x = b for a vector b. */
function solve(a, b) {
  const n = a.length;
  const { lu, perm, singular } = luDecompose(a);
  if (singular) throw new Error('matrix is singular');

  // forward substitution for L y = P b
  const y = new Array(n);
  for (let i = 0; i < n; i++) {
    let sum = b[perm[i]];
    for (let j = 0; j < i; j++) sum -= lu[i][j] * y[j];
    y[i] = sum;
  }
  // back substitution for U x = y
  const x = new Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let sum = y[i];
    for (let j = i + 1; j < n; j++) sum -= lu[i][j] * x[j];
    x[i] = sum / lu[i][i];
  }
  return x;
}

function inverse(m) {
  const n = m.length;
  const cols = identity(n).map((e) => solve(m, e));
  return transpose(cols);
}

function power(m, exp) {
  if (!Number.isInteger(exp) || exp < 0) throw new Error('exponent must be a non-negative integer');
  let result = identity(m.length);
  let base = m;
  while (exp > 0) {
    if (exp & 1) result = multiply(result, base);
    base = multiply(base, base);
    exp >>= 1;
  }
  return result;
}

function approxEqual(a, b, tol = 1e-9) {
  const [ar, ac] = shape(a);
  const [br, bc] = shape(b);
  if (ar !== br || ac !== bc) return false;
  return a.every((row, i) => row.every((v, j) => Math.abs(v - b[i][j]) <= tol));
}

function toString(m, digits = 3) {
  const cells = m.map((row) => row.map((v) => v.toFixed(digits)));
  const width = Math.max(...cells.flat().map((s) => s.length));
  return cells.map((row) => '[ ' + row.map((s) => s.padStart(width)).join('  ') + ' ]').join('\n');
}

module.exports = {
  shape,
  zeros,
  identity,
  transpose,
  add,
  scale,
  multiply,
  luDecompose,
  determinant,
  solve,
  inverse,
  power,
  approxEqual,
  toString,
};

if (require.main === module) {
  const a = [
    [4, -2, 1],
    [-2, 4, -2],
    [1, -2, 4],
  ];
  console.log('A =\n' + toString(a));
  console.log('det(A) =', determinant(a).toFixed(4));
  console.log('A^-1 =\n' + toString(inverse(a)));
  console.log('check:', approxEqual(multiply(a, inverse(a)), identity(3)));
  // Fibonacci numbers from powers of [[1,1],[1,0]]
  console.log('fib(30) =', power([[1, 1], [1, 0]], 30)[0][1]);
}
