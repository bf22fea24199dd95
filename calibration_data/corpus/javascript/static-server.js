#!/usr/bin/env node
'use strict';

// Minimal static file server for local development.
//   node static-server.js --port 8080 --root ./public --spa

const http = require('http');
const fs = require('fs');
const fsp = require('fs/promises');
const path = require('path');
const zlib = require('zlib');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

const COMPRESSIBLE = /^(text\/|application\/(json|javascript)|image\/svg)/;

function parseArgs(argv) {
  const opts = { port: 8080, root: process.cwd(), spa: false, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port' || arg === '-p') opts.port = Number(argv[++i]);
    else if (arg === '--root' || arg === '-r') opts.root = path.resolve(argv[++i]);
    else if (arg === '--host') opts.host = argv[++i];
    else if (arg === '--spa') opts.spa = true;
  }
  return opts;
}

/**
 * Map a URL path to a file inside root, refusing anything that escapes it.
 * @returns {string|null}
 */
function resolveSafe(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const full = path.join(root, path.normalize(decoded));
  const rel = path.relative(root, full);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return full;
}

async function findFile(root, urlPath, spa) {
  const target = resolveSafe(root, urlPath);
  if (!target) return { status: 403 };

  let stat = await fsp.stat(target).catch(() => null);
  let file = target;
  if (stat && stat.isDirectory()) {
    file = path.join(target, 'index.html');
    stat = await fsp.stat(file).catch(() => null);
  }
  if (stat && stat.isFile()) return { status: 200, file, stat };

  // single-page apps: unknown routes without an extension fall back to index.html
  if (spa && !path.extname(urlPath)) {
    file = path.join(root, 'index.html');
    stat = await fsp.stat(file).catch(() => null);
    if (stat) return { status: 200, file, stat };
  }
  return { status: 404 };
}

function logRequest(req, status, started) {
  const ms = (Number(process.hrtime.bigint() - started) / 1e6).toFixed(1);
  console.log(`${new Date().toISOString()} ${req.method} ${req.url} ${status} ${ms}ms`);
}

function createServer({ root, spa }) {
  return http.createServer(async (req, res) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => logRequest(req, res.statusCode, started));

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' });
      return res.end();
    }

    const found = await findFile(root, req.url, spa);
    if (found.status !== 200) {
      res.writeHead(found.status, { 'Content-Type': 'text/plain; charset=utf-8' });
      return res.end(found.status === 404 ? 'Not found\n' : 'Forbidden\n');
    }

    const { file, stat } = found;
    const etag = `W/"${stat.size.toString(16)}-${stat.mtimeMs.toString(16)}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { ETag: etag });
      return res.end();
    }

    const type = MIME[path.extname(file).toLowerCase()] || 'application/octet-stream';
    const headers = {
      'Content-Type': type,
      ETag: etag,
      'Last-Modified': stat.mtime.toUTCString(),
      'Cache-Control': 'no-cache',
    };

    const acceptsGzip = /\bgzip\b/.test(req.headers['accept-encoding'] || '');
    const compress = acceptsGzip && COMPRESSIBLE.test(type) && stat.size > 1024;
    if (compress) {
      headers['Content-Encoding'] = 'gzip';
      headers.Vary = 'Accept-Encoding';
    } else {
      headers['Content-Length'] = stat.size;
    }

    res.writeHead(200, headers);
    if (req.method === 'HEAD') return res.end();

    const stream = fs.createReadStream(file);
    stream.on('error', (err) => {
      console.error(`read error for ${file}:`, err.message);
      res.destroy(err);
    });
    if (compress) stream.pipe(zlib.createGzip()).pipe(res);
    else stream.pipe(res);
  });
}

if (require.main === module) {
  const opts = parseArgs(process.argv.slice(2));
  const server = createServer(opts);
  server.listen(opts.port, opts.host, () => {
    console.log(`serving ${opts.root} at http://${opts.host}:${opts.port}/`);
  });

  const shutdown = (signal) => {
    console.log(`\n${signal} received, closing server`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(1), 3000).unref();
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

module.exports = { createServer, resolveSafe, parseArgs };
