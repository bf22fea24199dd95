/**
 * markdown-lite: a deliberately small Markdown subset renderer.
 *
 * Supported: ATX headings, paragraphs, fenced code blocks, blockquotes,
 * ordered/unordered lists (one level), horizontal rules, and inline
 * `code`, **bold**, *italic*, [links](url) and auto-escaped HTML.
 */

const escapeHtml = (s) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function safeUrl(url) {
  const trimmed = url.trim();
  // block javascript: and similar schemes; allow relative links
  if (/^[a-z][a-z0-9+.-]*:/i.test(trimmed) && !/^(https?|mailto):/i.test(trimmed)) return '#';
  return escapeHtml(trimmed);
}

/**
 * Render inline markup. Code spans are pulled out first so their contents
 * are not touched by the emphasis rules.
 * @param {string} text
 */
export function renderInline(text) {
  const codeSpans = [];
  let out = text.replace(/`([^`]+)`/g, (_, code) => {
    codeSpans.push(`<code>${escapeHtml(code)}</code>`);
    return `\u0000${codeSpans.length - 1}\u0000`;
  });

  out = escapeHtml(out);
  out = out
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, label, url) => `<a href="${safeUrl(url)}">${label}</a>`)
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*])\*([^*]+)\*/g, '$1<em>$2</em>')
    .replace(/ {2,}$/gm, '<br>');

  return out.replace(/\u0000(\d+)\u0000/g, (_, i) => codeSpans[Number(i)]);
}

/**
 * Split the document into block tokens.
 * @param {string} src
 * @returns {Array<{type: string, [key: string]: any}>}
 */
export function tokenize(src) {
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  const tokens = [];
  let i = 0;

  while (i < lines.length) {
    const line = lines[i];

    if (/^\s*$/.test(line)) {
      i++;
      continue;
    }

    const fence = line.match(/^```\s*(\w+)?\s*$/);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !/^```\s*$/.test(lines[i])) body.push(lines[i++]);
      i++; // skip closing fence (or run off the end)
      tokens.push({ type: 'code', lang: fence[1] || '', text: body.join('\n') });
      continue;
    }

    const heading = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (heading) {
      tokens.push({ type: 'heading', level: heading[1].length, text: heading[2] });
      i++;
      continue;
    }

    if (/^(\*\s*){3,}$|^(-\s*){3,}$/.test(line.trim())) {
      tokens.push({ type: 'hr' });
      i++;
      continue;
    }

    if (line.startsWith('>')) {
      const quoted = [];
      while (i < lines.length && lines[i].startsWith('>')) {
        quoted.push(lines[i].replace(/^>\s?/, ''));
        i++;
      }
      tokens.push({ type: 'blockquote', children: tokenize(quoted.join('\n')) });
      continue;
    }

    const listMatch = line.match(/^\s*([-*+]|\d+[.)])\s+/);
    if (listMatch) {
      const ordered = /\d/.test(listMatch[1]);
      const items = [];
      while (i < lines.length) {
        const m = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
        if (m && /\d/.test(m[1]) === ordered) {
          items.push(m[2]);
        } else if (items.length && /^\s{2,}\S/.test(lines[i])) {
          items[items.length - 1] += ' ' + lines[i].trim(); // lazy continuation
        } else {
          break;
        }
        i++;
      }
      const start = ordered ? parseInt(listMatch[1], 10) : undefined;
      tokens.push({ type: 'list', ordered, start, items });
      continue;
    }

    // paragraph: gather until blank line or another block starts
    const para = [];
    while (
      i < lines.length &&
      lines[i].trim() !== '' &&
      !/^(#{1,6}\s|```|>|\s*([-*+]|\d+[.)])\s)/.test(lines[i])
    ) {
      para.push(lines[i++]);
    }
    tokens.push({ type: 'paragraph', text: para.join('\n') });
  }

  return tokens;
}

function slugify(text) {
  return text
    .toLowerCase()
    .replace(/[^\w\s-]/g, '')
    .trim()
    .replace(/\s+/g, '-');
}

/**
 * @param {string} src markdown source
 * @param {{ headingIds?: boolean }} [options]
 */
export function render(src, options = {}) {
  const { headingIds = true } = options;
  const used = new Map();

  const renderTokens = (tokens) =>
    tokens
      .map((tok) => {
        switch (tok.type) {
          case 'heading': {
            let id = '';
            if (headingIds) {
              const base = slugify(tok.text) || 'section';
              const n = used.get(base) || 0;
              used.set(base, n + 1);
              id = ` id="${n ? `${base}-${n}` : base}"`;
            }
            return `<h${tok.level}${id}>${renderInline(tok.text)}</h${tok.level}>`;
          }
          case 'paragraph':
            return `<p>${renderInline(tok.text)}</p>`;
          case 'code': {
            const cls = tok.lang ? ` class="language-${escapeHtml(tok.lang)}"` : '';
            return `<pre><code${cls}>${escapeHtml(tok.text)}</code></pre>`;
          }
          case 'blockquote':
            return `<blockquote>\n${renderTokens(tok.children)}\n</blockquote>`;
          case 'list': {
            const tag = tok.ordered ? 'ol' : 'ul';
            const start = tok.ordered && tok.start !== 1 ? ` start="${tok.start}"` : '';
            const items = tok.items.map((it) => `  <li>${renderInline(it)}</li>`).join('\n');
            return `<${tag}${start}>\n${items}\n</${tag}>`;
          }
          case 'hr':
            return '<hr>';
          default:
            throw new Error(`unknown token type: ${tok.type}`);
        }
      })
      .join('\n');

  return renderTokens(tokenize(src));
}

/** Build a nested table of contents from the headings in a document. */
export function tableOfContents(src, maxLevel = 3) {
  return tokenize(src)
    .filter((t) => t.type === 'heading' && t.level <= maxLevel)
    .map((t) => `${'  '.repeat(t.level - 1)}- [${t.text}](#${slugify(t.text)})`)
    .join('\n');
}
