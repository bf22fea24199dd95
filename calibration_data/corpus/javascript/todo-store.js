/**
 * A small Redux-like store for a todo app, with middleware, selectors
 * and undo/redo. Everything is immutable; reducers return new objects.
 */

export function createStore(reducer, initialState, middlewares = []) {
  let state = initialState;
  const subscribers = new Set();

  const getState = () => state;

  let dispatch = (action) => {
    if (!action || typeof action.type !== 'string') {
      throw new TypeError('actions must be objects with a string "type"');
    }
    const prev = state;
    state = reducer(state, action);
    if (state !== prev) subscribers.forEach((fn) => fn(state, prev, action));
    return action;
  };

  // compose middleware right to left, like applyMiddleware
  const api = { getState, dispatch: (action) => dispatch(action) };
  dispatch = middlewares
    .map((mw) => mw(api))
    .reduceRight((next, mw) => mw(next), dispatch);

  return {
    getState,
    dispatch: (action) => dispatch(action),
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
  };
}

// --- middleware --------------------------------------------------------

export const thunk = ({ getState, dispatch }) => (next) => (action) =>
  typeof action === 'function' ? action(dispatch, getState) : next(action);

export const logger = (log = console.log) => ({ getState }) => (next) => (action) => {
  const before = getState();
  const result = next(action);
  log(`[store] ${action.type}`, { before, after: getState() });
  return result;
};

// --- todo reducer ----------------------------------------------------------

let nextId = 1;

export const actions = {
  add: (title, due = null) => ({ type: 'todo/add', payload: { id: nextId++, title, due } }),
  toggle: (id) => ({ type: 'todo/toggle', payload: { id } }),
  rename: (id, title) => ({ type: 'todo/rename', payload: { id, title } }),
  remove: (id) => ({ type: 'todo/remove', payload: { id } }),
  clearCompleted: () => ({ type: 'todo/clearCompleted' }),
  setFilter: (filter) => ({ type: 'filter/set', payload: { filter } }),
  undo: () => ({ type: 'history/undo' }),
  redo: () => ({ type: 'history/redo' }),
};

const initialTodos = { items: [], filter: 'all' };

export function todosReducer(state = initialTodos, action) {
  const { type, payload } = action;
  switch (type) {
    case 'todo/add': {
      const title = payload.title.trim();
      if (!title) return state;
      const item = { id: payload.id, title, done: false, due: payload.due, createdAt: Date.now() };
      return { ...state, items: [...state.items, item] };
    }
    case 'todo/toggle':
      return {
        ...state,
        items: state.items.map((t) => (t.id === payload.id ? { ...t, done: !t.done } : t)),
      };
    case 'todo/rename':
      return {
        ...state,
        items: state.items.map((t) => (t.id === payload.id ? { ...t, title: payload.title } : t)),
      };
    case 'todo/remove':
      return { ...state, items: state.items.filter((t) => t.id !== payload.id) };
    case 'todo/clearCompleted':
      return state.items.some((t) => t.done)
        ? { ...state, items: state.items.filter((t) => !t.done) }
        : state;
    case 'filter/set':
      return { ...state, filter: payload.filter };
    default:
      return state;
  }
}

/**
 * Wrap any reducer with undo/redo history. Filter changes are not
 * recorded since users don't expect "undo" to switch tabs.
 */
export function undoable(reducer, { limit = 50, ignore = ['filter/set'] } = {}) {
  const init = { past: [], present: reducer(undefined, { type: '@@init' }), future: [] };

  return function history(state = init, action) {
    const { past, present, future } = state;
    switch (action.type) {
      case 'history/undo':
        if (!past.length) return state;
        return {
          past: past.slice(0, -1),
          present: past[past.length - 1],
          future: [present, ...future],
        };
      case 'history/redo':
        if (!future.length) return state;
        return { past: [...past, present], present: future[0], future: future.slice(1) };
      default: {
        const next = reducer(present, action);
        if (next === present) return state;
        if (ignore.includes(action.type)) return { past, present: next, future };
        return { past: [...past, present].slice(-limit), present: next, future: [] };
      }
    }
  };
}

// --- selectors -------------------------------------------------------------

export const selectVisible = ({ items, filter }) => {
  if (filter === 'active') return items.filter((t) => !t.done);
  if (filter === 'done') return items.filter((t) => t.done);
  return items;
};

export const selectStats = ({ items }) => {
  const done = items.filter((t) => t.done).length;
  return { total: items.length, done, remaining: items.length - done };
};

export function selectOverdue({ items }, now = new Date()) {
  const today = now.toISOString().slice(0, 10);
  return items.filter((t) => !t.done && t.due && t.due < today);
}

/** Async action: load todos from an API and add them one by one. */
export const importTodos = (fetchJson, url) => async (dispatch) => {
  const list = await fetchJson(url);
  for (const entry of list) dispatch(actions.add(entry.title, entry.due || null));
  return list.length;
};
