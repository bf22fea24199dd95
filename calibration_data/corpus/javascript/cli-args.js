'use strict';

/**
 * Declarative command line parser.
 *
 * const cli = defineCli({
 *   name: 'deploy',
 *   options: {
 *     env: { alias: 'e', type: 'string', required: true, choices: ['dev', 'prod'] },
 *     dryRun: { type: 'boolean', description: 'print actions only' },
 *     retries: { type: 'number', default: 3 },
 *     tag: { type: 'string', multiple: true },
 *   },
 * });
 * const { options, positionals } = cli.parse(process.argv.slice(2));
 */

class UsageError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UsageError';
  }
}

const kebab = (s) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

function coerce(name, spec, raw) {
  switch (spec.type) {
    case 'number': {
      const n = Number(raw);
      if (raw === '' || Number.isNaN(n)) throw new UsageError(`--${kebab(name)} expects a number, got "${raw}"`);
      return n;
    }
    case 'boolean':
      if (raw === true || raw === 'true' || raw === '1') return true;
      if (raw === false || raw === 'false' || raw === '0') return false;
      throw new UsageError(`--${kebab(name)} expects true/false, got "${raw}"`);
    default:
      return String(raw);
  }
}

function defineCli(config) {
  const specs = config.options || {};
  const byFlag = new Map();
  for (const [name, spec] of Object.entries(specs)) {
    byFlag.set(kebab(name), name);
    if (spec.alias) byFlag.set(spec.alias, name);
  }

  function assign(options, name, value) {
    const spec = specs[name];
    const v = coerce(name, spec, value);
    if (spec.choices && !spec.choices.includes(v)) {
      throw new UsageError(`--${kebab(name)} must be one of: ${spec.choices.join(', ')}`);
    }
    if (spec.multiple) (options[name] = options[name] || []).push(v);
    else options[name] = v;
  }

  function parse(argv) {
    const options = {};
    const positionals = [];
    let i = 0;

    const takeValue = (flag) => {
      if (i + 1 >= argv.length) throw new UsageError(`missing value for ${flag}`);
      return argv[++i];
    };

    for (; i < argv.length; i++) {
      const arg = argv[i];

      if (arg === '--') {
        positionals.push(...argv.slice(i + 1));
        break;
      }

      if (arg.startsWith('--')) {
        const eq = arg.indexOf('=');
        let flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
        let negated = false;
        if (!byFlag.has(flag) && flag.startsWith('no-') && byFlag.has(flag.slice(3))) {
          flag = flag.slice(3);
          negated = true;
        }
        const name = byFlag.get(flag);
        if (!name) throw new UsageError(`unknown option --${flag}`);
        const spec = specs[name];
        if (spec.type === 'boolean') {
          assign(options, name, eq === -1 ? !negated : arg.slice(eq + 1));
        } else {
          assign(options, name, eq === -1 ? takeValue(arg) : arg.slice(eq + 1));
        }
        continue;
      }

      if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
        // bundled short flags: -vf file  ==  -v -f file
        const letters = arg.slice(1);
        for (let j = 0; j < letters.length; j++) {
          const name = byFlag.get(letters[j]);
          if (!name) throw new UsageError(`unknown option -${letters[j]}`);
          if (specs[name].type === 'boolean') {
            assign(options, name, true);
          } else {
            const rest = letters.slice(j + 1);
            assign(options, name, rest || takeValue(`-${letters[j]}`));
            break;
          }
        }
        continue;
      }

      positionals.push(arg);
    }

    for (const [name, spec] of Object.entries(specs)) {
      if (options[name] === undefined) {
        if (spec.env && process.env[spec.env] !== undefined) assign(options, name, process.env[spec.env]);
        else if ('default' in spec) options[name] = spec.default;
        else if (spec.type === 'boolean') options[name] = false;
      }
      if (spec.required && options[name] === undefined) {
        throw new UsageError(`missing required option --${kebab(name)}`);
      }
    }

    return { options, positionals };
  }

  function help() {
    const lines = [`Usage: ${config.name} [options] ${config.usage || ''}`.trimEnd(), ''];
    if (config.description) lines.push(config.description, '');
    lines.push('Options:');
    const rows = Object.entries(specs).map(([name, spec]) => {
      const flags = (spec.alias ? `-${spec.alias}, ` : '    ') + `--${kebab(name)}`;
      const arg = spec.type === 'boolean' ? '' : ` <${spec.type || 'string'}>`;
      const notes = [];
      if (spec.choices) notes.push(`one of ${spec.choices.join('|')}`);
      if ('default' in spec) notes.push(`default: ${JSON.stringify(spec.default)}`);
      if (spec.required) notes.push('required');
      const desc = [spec.description, notes.length ? `(${notes.join(', ')})` : '']
        .filter(Boolean)
        .join(' ');
      return [flags + arg, desc];
    });
    const width = Math.max(...rows.map(([f]) => f.length)) + 2;
    for (const [f, d] of rows) lines.push('  ' + f.padEnd(width) + d);
    return lines.join('\n');
  }

  return { parse, help };
}

module.exports = { defineCli, UsageError };

if (require.main === module) {
  const cli = defineCli({
    name: 'greet',
    usage: '<name...>',
    description: 'Print a greeting for each name.',
    options: {
      shout: { alias: 's', type: 'boolean', description: 'upper-case the output' },
      times: { alias: 'n', type: 'number', default: 1, description: 'repeat count' },
      greeting: { type: 'string', default: 'Hello', env: 'GREETING' },
      help: { alias: 'h', type: 'boolean' },
    },
  });

  try {
    const { options, positionals } = cli.parse(process.argv.slice(2));
    if (options.help || positionals.length === 0) {
      console.log(cli.help());
      process.exit(options.help ? 0 : 2);
    }
    for (const name of positionals) {
      let line = `${options.greeting}, ${name}!`;
      if (options.shout) line = line.toUpperCase();
      for (let k = 0; k < options.times; k++) console.log(line);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}\n\n${cli.help()}`);
    process.exit(2);
  }
}
