'use strict';

const fs = require('fs');
const { Transform } = require('stream');

/**
 * RFC 4180-ish CSV parsing. Handles quoted fields, escaped quotes ("")
 * and newlines inside quotes. Works on whole strings or as a stream.
 */

const DEFAULTS = {
  delimiter: ',',
  quote: '"',
  header: true,
  trim: false,
  skipEmptyLines: true,
  cast: false,
};

function castValue(value) {
  if (value === '') return null;
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value)) return Number(value);
  return value;
}

/**
 * Incremental tokenizer. Feed it chunks and it emits complete rows; the
 * state machine keeps partial fields between chunks.
 */
class CsvTokenizer {
  constructor(options = {}) {
    this.opts = { ...DEFAULTS, ...options };
    this.field = '';
    this.row = [];
    this.inQuotes = false;
    this.pendingQuote = false; // saw a quote inside a quoted field, need next char to decide
    this.lastWasCR = false;
  }

  /**
   * @param {string} chunk
   * @param {(row: string[]) => void} onRow
   */
  write(chunk, onRow) {
    const { delimiter, quote } = this.opts;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i];

      if (this.pendingQuote) {
        this.pendingQuote = false;
        if (ch === quote) {
          this.field += quote; // "" -> literal quote
          continue;
        }
        this.inQuotes = false; // closing quote; fall through to handle ch
      }

      if (this.inQuotes) {
        if (ch === quote) this.pendingQuote = true;
        else this.field += ch;
        continue;
      }

      if (ch === '\n' && this.lastWasCR) {
        this.lastWasCR = false;
        continue;
      }
      this.lastWasCR = ch === '\r';

      if (ch === quote && this.field === '') {
        this.inQuotes = true;
      } else if (ch === delimiter) {
        this._endField();
      } else if (ch === '\n' || ch === '\r') {
        this._endField();
        this._endRow(onRow);
      } else {
        this.field += ch;
      }
    }
  }

  end(onRow) {
    if (this.inQuotes && !this.pendingQuote) {
      throw new Error('CSV ended inside a quoted field');
    }
    if (this.field !== '' || this.row.length > 0) {
      this._endField();
      this._endRow(onRow);
    }
  }

  _endField() {
    this.row.push(this.opts.trim ? this.field.trim() : this.field);
    this.field = '';
  }

  _endRow(onRow) {
    const row = this.row;
    this.row = [];
    if (this.opts.skipEmptyLines && row.length === 1 && row[0] === '') return;
    onRow(row);
  }
}

function rowsToRecords(rows, opts) {
  if (!opts.header) return opts.cast ? rows.map((r) => r.map(castValue)) : rows;
  const [headers, ...body] = rows;
  if (!headers) return [];
  return body.map((cells, lineNo) => {
    if (cells.length > headers.length) {
      throw new Error(`row ${lineNo + 2} has ${cells.length} fields, expected ${headers.length}`);
    }
    const record = {};
    headers.forEach((h, i) => {
      const raw = cells[i] ?? '';
      record[h] = opts.cast ? castValue(raw) : raw;
    });
    return record;
  });
}

/** Parse a complete CSV string. */
function parse(text, options = {}) {
  const opts = { ...DEFAULTS, ...options };
  const tokenizer = new CsvTokenizer(opts);
  const rows = [];
  const push = (r) => rows.push(r);
  // strip a UTF-8 BOM that Excel likes to add
  tokenizer.write(text.replace(/^\uFEFF/, ''), push);
  tokenizer.end(push);
  return rowsToRecords(rows, opts);
}

/**
 * Object-mode transform stream: bytes in, records out.
 *   fs.createReadStream('data.csv').pipe(createParserStream()).on('data', ...)
 */
function createParserStream(options = {}) {
  const opts = { ...DEFAULTS, ...options };
  const tokenizer = new CsvTokenizer(opts);
  let headers = null;

  const toRecord = (row) => {
    if (!opts.header) return opts.cast ? row.map(castValue) : row;
    if (!headers) {
      headers = row;
      return null;
    }
    return Object.fromEntries(
      headers.map((h, i) => [h, opts.cast ? castValue(row[i] ?? '') : row[i] ?? ''])
    );
  };

  return new Transform({
    readableObjectMode: true,
    transform(chunk, _enc, cb) {
      try {
        tokenizer.write(chunk.toString('utf8'), (row) => {
          const rec = toRecord(row);
          if (rec) this.push(rec);
        });
        cb();
      } catch (err) {
        cb(err);
      }
    },
    flush(cb) {
      try {
        tokenizer.end((row) => {
          const rec = toRecord(row);
          if (rec) this.push(rec);
        });
        cb();
      } catch (err) {
        cb(err);
      }
    },
  });
}

function needsQuoting(value, delimiter) {
  return /["\r\n]/.test(value) || value.includes(delimiter) || /^\s|\s$/.test(value);
}

/** Serialize an array of objects back to CSV. */
function stringify(records, { delimiter = ',', columns } = {}) {
  if (records.length === 0) return '';
  const cols = columns || Object.keys(records[0]);
  const fmt = (v) => {
    const s = v == null ? '' : String(v);
    return needsQuoting(s, delimiter) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [cols.map(fmt).join(delimiter)];
  for (const rec of records) lines.push(cols.map((c) => fmt(rec[c])).join(delimiter));
  return lines.join('\r\n') + '\r\n';
}

module.exports = { parse, stringify, createParserStream, CsvTokenizer };

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node csv-parser.js <file.csv>');
    process.exit(1);
  }
  let count = 0;
  fs.createReadStream(file)
    .pipe(createParserStream({ cast: true }))
    .on('data', (rec) => {
      if (count++ < 5) console.log(rec);
    })
    .on('end', () => console.log(`${count} records`))
    .on('error', (err) => {
      console.error(err.message);
      process.exitCode = 1;
    });
}
