'use strict';

// Pseudo-legal move generation and validation for chess, with a check test
// so that moves leaving your own king in check are rejected. Castling and
// en passant are included; threefold repetition and the 50-move rule are not.

const FILES = 'abcdefgh';

const toSquare = (file, rank) => FILES[file] + (rank + 1);

function fromSquare(sq) {
  const file = FILES.indexOf(sq[0]);
  const rank = Number(sq[1]) - 1;
  if (file < 0 || !(rank >= 0 && rank < 8) || sq.length !== 2) {
    throw new Error(`invalid square: ${sq}`);
  }
  return [file, rank];
}

const isWhite = (p) => p !== null && p === p.toUpperCase();
const colorOf = (p) => (p === null ? null : isWhite(p) ? 'w' : 'b');

/**
 * Parse the piece placement, side to move, castling and en passant fields
 * of a FEN string.
 */
function parseFen(fen) {
  const [placement, turn = 'w', castling = '-', ep = '-'] = fen.trim().split(/\s+/);
  const board = Array.from({ length: 8 }, () => new Array(8).fill(null));
  const ranks = placement.split('/');
  if (ranks.length !== 8) throw new Error('FEN must describe 8 ranks');

  ranks.forEach((row, idx) => {
    const rank = 7 - idx;
    let file = 0;
    for (const ch of row) {
      if (/\d/.test(ch)) {
        file += Number(ch);
      } else {
        board[rank][file++] = ch;
      }
    }
    if (file !== 8) throw new Error(`rank ${rank + 1} has ${file} files`);
  });

  return { board, turn, castling: castling === '-' ? '' : castling, ep: ep === '-' ? null : ep };
}

const KNIGHT = [[1, 2], [2, 1], [2, -1], [1, -2], [-1, -2], [-2, -1], [-2, 1], [-1, 2]];
const KING = [[1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1]];
const ROOK_DIRS = [[1, 0], [-1, 0], [0, 1], [0, -1]];
const BISHOP_DIRS = [[1, 1], [1, -1], [-1, 1], [-1, -1]];

const inside = (f, r) => f >= 0 && f < 8 && r >= 0 && r < 8;

/** Squares attacked by the piece on (f, r), ignoring pins. */
function attacksFrom(board, f, r) {
  const piece = board[r][f];
  const type = piece.toLowerCase();
  const out = [];

  const slide = (dirs) => {
    for (const [df, dr] of dirs) {
      let nf = f + df;
      let nr = r + dr;
      while (inside(nf, nr)) {
        out.push([nf, nr]);
        if (board[nr][nf] !== null) break;
        nf += df;
        nr += dr;
      }
    }
  };

  switch (type) {
    case 'p': {
      const dir = isWhite(piece) ? 1 : -1;
      for (const df of [-1, 1]) if (inside(f + df, r + dir)) out.push([f + df, r + dir]);
      break;
    }
    case 'n':
      for (const [df, dr] of KNIGHT) if (inside(f + df, r + dr)) out.push([f + df, r + dr]);
      break;
    case 'k':
      for (const [df, dr] of KING) if (inside(f + df, r + dr)) out.push([f + df, r + dr]);
      break;
    case 'r':
      slide(ROOK_DIRS);
      break;
    case 'b':
      slide(BISHOP_DIRS);
      break;
    case 'q':
      slide(ROOK_DIRS.concat(BISHOP_DIRS));
      break;
  }
  return out;
}

function isAttacked(board, f, r, byColor) {
  for (let rr = 0; rr < 8; rr++) {
    for (let ff = 0; ff < 8; ff++) {
      const p = board[rr][ff];
      if (p === null || colorOf(p) !== byColor) continue;
      if (attacksFrom(board, ff, rr).some(([af, ar]) => af === f && ar === r)) return true;
    }
  }
  return false;
}

function findKing(board, color) {
  const king = color === 'w' ? 'K' : 'k';
  for (let r = 0; r < 8; r++) {
    const f = board[r].indexOf(king);
    if (f !== -1) return [f, r];
  }
  throw new Error(`no ${color} king on the board`);
}

/**
 * Generate candidate destination squares for the piece on `from`,
 * before checking whether the move exposes the king.
 */
function pseudoMoves(pos, from) {
  const { board, ep, castling } = pos;
  const [f, r] = fromSquare(from);
  const piece = board[r][f];
  if (!piece) return [];
  const color = colorOf(piece);
  const enemy = color === 'w' ? 'b' : 'w';

  if (piece.toLowerCase() === 'p') {
    const dir = color === 'w' ? 1 : -1;
    const startRank = color === 'w' ? 1 : 6;
    const moves = [];
    if (inside(f, r + dir) && board[r + dir][f] === null) {
      moves.push(toSquare(f, r + dir));
      if (r === startRank && board[r + 2 * dir][f] === null) moves.push(toSquare(f, r + 2 * dir));
    }
    for (const [af, ar] of attacksFrom(board, f, r)) {
      const target = board[ar][af];
      if ((target && colorOf(target) === enemy) || toSquare(af, ar) === ep) {
        moves.push(toSquare(af, ar));
      }
    }
    return moves;
  }

  const moves = attacksFrom(board, f, r)
    .filter(([af, ar]) => colorOf(board[ar][af]) !== color)
    .map(([af, ar]) => toSquare(af, ar));

  if (piece.toLowerCase() === 'k' && f === 4 && r === (color === 'w' ? 0 : 7)) {
    const rights = color === 'w' ? castling.replace(/[a-z]/g, '') : castling.replace(/[A-Z]/g, '');
    const empty = (files) => files.every((ff) => board[r][ff] === null);
    const safe = (files) => files.every((ff) => !isAttacked(board, ff, r, enemy));
    if (/[Kk]/.test(rights) && empty([5, 6]) && safe([4, 5, 6])) moves.push(toSquare(6, r));
    if (/[Qq]/.test(rights) && empty([1, 2, 3]) && safe([4, 3, 2])) moves.push(toSquare(2, r));
  }
  return moves;
}

/** Return a new board with the move applied (handles castling, ep, promotion). */
function applyMove(pos, from, to, promotion = 'q') {
  const board = pos.board.map((row) => row.slice());
  const [ff, fr] = fromSquare(from);
  const [tf, tr] = fromSquare(to);
  let piece = board[fr][ff];

  if (piece.toLowerCase() === 'p' && to === pos.ep) board[fr][tf] = null;
  if (piece.toLowerCase() === 'k' && Math.abs(tf - ff) === 2) {
    const [rookFrom, rookTo] = tf === 6 ? [7, 5] : [0, 3];
    board[fr][rookTo] = board[fr][rookFrom];
    board[fr][rookFrom] = null;
  }
  if (piece.toLowerCase() === 'p' && (tr === 7 || tr === 0)) {
    piece = isWhite(piece) ? promotion.toUpperCase() : promotion.toLowerCase();
  }
  board[tr][tf] = piece;
  board[fr][ff] = null;
  return board;
}

function legalMoves(pos, from) {
  const [f, r] = fromSquare(from);
  const piece = pos.board[r][f];
  if (!piece || colorOf(piece) !== pos.turn) return [];
  const enemy = pos.turn === 'w' ? 'b' : 'w';
  return pseudoMoves(pos, from).filter((to) => {
    const next = applyMove(pos, from, to);
    const [kf, kr] = findKing(next, pos.turn);
    return !isAttacked(next, kf, kr, enemy);
  });
}

function validateMove(fen, from, to) {
  const pos = parseFen(fen);
  const ok = legalMoves(pos, from).includes(to);
  return ok ? { ok: true } : { ok: false, reason: `${from}-${to} is not legal` };
}

module.exports = { parseFen, legalMoves, validateMove, applyMove, isAttacked, findKing };

if (require.main === module) {
  const start = 'rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1';
  const pos = parseFen(start);
  console.log('knight g1:', legalMoves(pos, 'g1'));
  console.log('pawn e2:', legalMoves(pos, 'e2'));
  console.log(validateMove(start, 'e2', 'e5'));
}
