'use strict';

/*
 * Composable validators for request payloads. Each validator is a function
 * (value, path) => array of error objects; an empty array means valid.
 */

const err = (path, message) => [{ path: path || '(root)', message }];

const v = {
  string({ min = 0, max = Infinity, pattern, trim = false } = {}) {
    return (value, path) => {
      if (typeof value !== 'string') return err(path, 'must be a string');
      const s = trim ? value.trim() : value;
      if (s.length < min) return err(path, `must be at least ${min} characters`);
      if (s.length > max) return err(path, `must be at most ${max} characters`);
      if (pattern && !pattern.test(s)) return err(path, `must match ${pattern}`);
      return [];
    };
  },

  number({ min = -Infinity, max = Infinity, integer = false } = {}) {
    return (value, path) => {
      if (typeof value !== 'number' || Number.isNaN(value)) return err(path, 'must be a number');
      if (integer && !Number.isInteger(value)) return err(path, 'must be an integer');
      if (value < min || value > max) return err(path, `must be between ${min} and ${max}`);
      return [];
    };
  },

  boolean: () => (value, path) => (typeof value === 'boolean' ? [] : err(path, 'must be a boolean')),

  email: () => v.string({ max: 254, pattern: /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/ }),

  oneOf: (...allowed) => (value, path) =>
    allowed.includes(value) ? [] : err(path, `must be one of ${allowed.map(String).join(', ')}`),

  // marked so object() doesn't report a missing key as "is required"
  optional: (inner) =>
    Object.assign((value, path) => (value === undefined || value === null ? [] : inner(value, path)), {
      isOptional: true,
    }),

  array(item, { min = 0, max = Infinity, unique = false } = {}) {
    return (value, path) => {
      if (!Array.isArray(value)) return err(path, 'must be an array');
      if (value.length < min || value.length > max) {
        return err(path, `must have between ${min} and ${max} items`);
      }
      const errors = value.flatMap((x, i) => item(x, `${path}[${i}]`));
      if (unique && new Set(value.map((x) => JSON.stringify(x))).size !== value.length) {
        errors.push(...err(path, 'must not contain duplicates'));
      }
      return errors;
    };
  },

  object(shape, { strict = false } = {}) {
    return (value, path) => {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return err(path, 'must be an object');
      }
      const join = (key) => (path ? `${path}.${key}` : key);
      const errors = [];
      for (const [key, check] of Object.entries(shape)) {
        if (!(key in value) && !check.isOptional) {
          errors.push(...err(join(key), 'is required'));
          continue;
        }
        errors.push(...check(value[key], join(key)));
      }
      if (strict) {
        for (const key of Object.keys(value)) {
          if (!(key in shape)) errors.push(...err(join(key), 'is not allowed'));
        }
      }
      return errors;
    };
  },

  /** Cross-field rule applied after the base validator passes. */
  refine(base, predicate, message) {
    return (value, path) => {
      const errors = base(value, path);
      if (errors.length) return errors;
      return predicate(value) ? [] : err(path, message);
    };
  },
};

function validate(schema, data) {
  const errors = schema(data, '');
  return { valid: errors.length === 0, errors };
}

/** Express-style middleware that rejects bad JSON bodies with a 422. */
function validateBody(schema) {
  return (req, res, next) => {
    const { valid, errors } = validate(schema, req.body);
    if (valid) return next();
    res.statusCode = 422;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ error: 'Validation failed', details: errors }));
  };
}

// Example schema for a signup form
const signupSchema = v.refine(
  v.object(
    {
      username: v.string({ min: 3, max: 20, pattern: /^[a-z0-9_]+$/i }),
      email: v.email(),
      password: v.string({ min: 8 }),
      confirm: v.string(),
      age: v.optional(v.number({ min: 13, integer: true })),
      interests: v.optional(v.array(v.string({ min: 1 }), { max: 10, unique: true })),
      plan: v.oneOf('free', 'pro', 'team'),
    },
    { strict: true }
  ),
  (form) => form.password === form.confirm,
  'passwords do not match'
);

module.exports = { v, validate, validateBody, signupSchema };
