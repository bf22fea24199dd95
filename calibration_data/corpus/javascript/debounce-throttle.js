/**
 * Timing helpers for UI code: debounce and throttle. Neither touches the
 * DOM, so both can be unit tested in Node with fake timers.
 */

/**
 * Delay calls to `fn` until `wait` ms have passed without another call.
 *
 * @template {(...args: any[]) => any} F
 * @param {F} fn
 * @param {number} wait
 * @param {{ leading?: boolean, trailing?: boolean, maxWait?: number }} [opts]
 */
export function debounce(fn, wait, opts = {}) {
  const { leading = false, trailing = true, maxWait } = opts;
  let timer = null;
  let lastArgs = null;
  let lastThis = null;
  let firstCallAt = 0;
  let result;

  function invoke() {
    const args = lastArgs;
    const ctx = lastThis;
    lastArgs = lastThis = null;
    firstCallAt = 0;
    result = fn.apply(ctx, args);
    return result;
  }

  function onTimeout() {
    timer = null;
    if (trailing && lastArgs) invoke();
    firstCallAt = 0;
  }

  function debounced(...args) {
    const now = Date.now();
    const isFirst = timer === null;
    lastArgs = args;
    lastThis = this;

    if (isFirst) {
      firstCallAt = now;
      if (leading) {
        invoke();
        // keep a timer running so calls inside the window stay suppressed
        timer = setTimeout(onTimeout, wait);
        return result;
      }
    }

    clearTimeout(timer);
    // maxWait forces a call even if the user keeps typing forever
    if (maxWait != null && now - firstCallAt >= maxWait) {
      timer = null;
      return invoke();
    }
    timer = setTimeout(onTimeout, wait);
    return result;
  }

  debounced.cancel = () => {
    clearTimeout(timer);
    timer = null;
    lastArgs = lastThis = null;
    firstCallAt = 0;
  };

  debounced.flush = () => {
    if (timer === null) return result;
    clearTimeout(timer);
    timer = null;
    return lastArgs ? invoke() : result;
  };

  debounced.pending = () => timer !== null;

  return debounced;
}

/**
 * Call `fn` at most once every `interval` ms. The final call in a burst is
 * always delivered so the UI ends up in the right state.
 */
export function throttle(fn, interval) {
  let lastRun = 0;
  let timer = null;
  let pendingArgs = null;

  return function throttled(...args) {
    const now = Date.now();
    const remaining = interval - (now - lastRun);

    if (remaining <= 0) {
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      lastRun = now;
      fn.apply(this, args);
      return;
    }

    pendingArgs = args;
    if (!timer) {
      timer = setTimeout(() => {
        lastRun = Date.now();
        timer = null;
        const a = pendingArgs;
        pendingArgs = null;
        fn.apply(this, a);
      }, remaining);
    }
  };
}

/** Promise-based sleep, useful in tests and retry loops. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
