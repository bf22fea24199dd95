'use strict';

/**
 * A small, dependency-free event emitter that works the same way in the
 * browser and in Node. Supports `once` listeners, wildcard subscriptions
 * and a per-event listener limit to catch accidental leaks.
 */
class Emitter {
  /**
   * @param {object} [options]
   * @param {number} [options.maxListeners=10] warn when an event exceeds this many listeners
   */
  constructor(options = {}) {
    this._events = new Map();
    this._maxListeners = options.maxListeners ?? 10;
    this._warned = new Set();
  }

  /**
   * Register a listener for `name`. Use '*' to receive every event.
   * @param {string} name
   * @param {Function} fn
   * @returns {() => void} a function that removes the listener
   */
  on(name, fn) {
    if (typeof fn !== 'function') {
      throw new TypeError(`listener for "${name}" must be a function`);
    }
    let list = this._events.get(name);
    if (!list) {
      list = [];
      this._events.set(name, list);
    }
    list.push({ fn, once: false });
    this._checkLimit(name, list.length);
    return () => this.off(name, fn);
  }

  /**
   * Like `on`, but the listener is removed after its first call.
   */
  once(name, fn) {
    const off = this.on(name, fn);
    const list = this._events.get(name);
    list[list.length - 1].once = true;
    return off;
  }

  /**
   * Remove a listener. Without `fn`, removes every listener for `name`.
   */
  off(name, fn) {
    if (!this._events.has(name)) return this;
    if (!fn) {
      this._events.delete(name);
      return this;
    }
    const remaining = this._events.get(name).filter((entry) => entry.fn !== fn);
    if (remaining.length) {
      this._events.set(name, remaining);
    } else {
      this._events.delete(name);
    }
    return this;
  }

  /**
   * Call every listener for `name` with the given arguments.
   * Wildcard listeners receive the event name as their first argument.
   * @returns {boolean} true if at least one listener ran
   */
  emit(name, ...args) {
    let called = false;
    const run = (key, callArgs) => {
      const list = this._events.get(key);
      if (!list) return;
      // copy so listeners that unsubscribe during emit don't skip siblings
      for (const entry of list.slice()) {
        if (entry.once) this.off(key, entry.fn);
        entry.fn.apply(this, callArgs);
        called = true;
      }
    };

    run(name, args);
    if (name !== '*') run('*', [name, ...args]);

    if (name === 'error' && !called) {
      const err = args[0] instanceof Error ? args[0] : new Error(String(args[0]));
      throw err;
    }
    return called;
  }

  /**
   * Resolve with the arguments of the next `name` event.
   * @param {string} name
   * @param {number} [timeoutMs]
   * @returns {Promise<any[]>}
   */
  waitFor(name, timeoutMs) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const handler = (...args) => {
        if (timer) clearTimeout(timer);
        resolve(args);
      };
      this.once(name, handler);
      if (timeoutMs != null) {
        timer = setTimeout(() => {
          this.off(name, handler);
          reject(new Error(`timed out waiting for "${name}" after ${timeoutMs}ms`));
        }, timeoutMs);
      }
    });
  }

  listenerCount(name) {
    const list = this._events.get(name);
    return list ? list.length : 0;
  }

  eventNames() {
    return [...this._events.keys()];
  }

  _checkLimit(name, count) {
    if (this._maxListeners > 0 && count > this._maxListeners && !this._warned.has(name)) {
      this._warned.add(name);
      console.warn(
        `Possible memory leak: ${count} listeners added for "${name}". ` +
          'Use a larger maxListeners if this is intended.'
      );
    }
  }
}

/**
 * Mix emitter methods into an existing object, which is handy for plain
 * object models that can't extend a class.
 */
function makeObservable(target) {
  const emitter = new Emitter();
  for (const method of ['on', 'once', 'off', 'emit', 'waitFor', 'listenerCount']) {
    Object.defineProperty(target, method, {
      value: emitter[method].bind(emitter),
      enumerable: false,
    });
  }
  return target;
}

module.exports = { Emitter, makeObservable };
