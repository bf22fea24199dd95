'use strict';

// Date helpers that work on calendar dates in UTC, so results don't shift
// when the code runs in a different time zone.

const DAY_MS = 24 * 60 * 60 * 1000;
const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Parse "YYYY-MM-DD" strictly (rejects 2023-02-30). */
function parseISODate(str) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(str);
  if (!m) throw new Error(`expected YYYY-MM-DD, got "${str}"`);
  const [y, mo, d] = m.slice(1).map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) {
    throw new Error(`invalid calendar date: ${str}`);
  }
  return date;
}

function addDays(date, n) {
  return new Date(date.getTime() + n * DAY_MS);
}

/** Add months, clamping to the end of the month (Jan 31 + 1 month = Feb 28/29). */
function addMonths(date, n) {
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth() + n;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return new Date(Date.UTC(y, m, Math.min(date.getUTCDate(), lastDay)));
}

const isWeekend = (date) => date.getUTCDay() === 0 || date.getUTCDay() === 6;

/**
 * Add business days, skipping weekends and any ISO dates in `holidays`.
 */
function addBusinessDays(date, n, holidays = []) {
  const skip = new Set(holidays);
  const step = n >= 0 ? 1 : -1;
  let remaining = Math.abs(n);
  let d = date;
  while (remaining > 0) {
    d = addDays(d, step);
    if (!isWeekend(d) && !skip.has(toISODate(d))) remaining--;
  }
  return d;
}

function daysBetween(a, b) {
  return Math.round((b.getTime() - a.getTime()) / DAY_MS);
}

function toISODate(date) {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

/** ISO-8601 week number (weeks start Monday; week 1 contains Jan 4th). */
function isoWeek(date) {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  return { year: d.getUTCFullYear(), week: Math.ceil(((d - yearStart) / DAY_MS + 1) / 7) };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Tiny strftime subset: YYYY MM DD HH mm ss MMM */
function format(date, pattern) {
  const tokens = {
    YYYY: date.getUTCFullYear(),
    MMM: MONTHS[date.getUTCMonth()],
    MM: pad(date.getUTCMonth() + 1),
    DD: pad(date.getUTCDate()),
    HH: pad(date.getUTCHours()),
    mm: pad(date.getUTCMinutes()),
    ss: pad(date.getUTCSeconds()),
  };
  return pattern.replace(/YYYY|MMM|MM|DD|HH|mm|ss/g, (t) => tokens[t]);
}

/** "3 days ago", "in 2 hours", "just now". */
function relativeTime(date, now = new Date()) {
  const seconds = Math.round((date.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return 'just now';
  const units = [
    ['year', 365 * 86400],
    ['month', 30 * 86400],
    ['week', 7 * 86400],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
  ];
  for (const [name, size] of units) {
    if (abs >= size) {
      const n = Math.round(abs / size);
      const label = `${n} ${name}${n === 1 ? '' : 's'}`;
      return seconds < 0 ? `${label} ago` : `in ${label}`;
    }
  }
  return seconds < 0 ? '1 minute ago' : 'in 1 minute';
}

module.exports = {
  parseISODate,
  addDays,
  addMonths,
  addBusinessDays,
  daysBetween,
  toISODate,
  isoWeek,
  format,
  relativeTime,
  isWeekend,
};
