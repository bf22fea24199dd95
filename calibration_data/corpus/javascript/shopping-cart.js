// Shopping cart domain model. Money is stored in integer cents to avoid
// floating point drift; formatting happens only at the edges.

export class CartError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CartError';
    this.code = code;
  }
}

const toCents = (amount) => Math.round(amount * 100);

export function formatMoney(cents, currency = 'USD', locale = 'en-US') {
  return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(cents / 100);
}

/**
 * Discount rules are plain functions of the cart that return a discount in
 * cents. Keeping them as data makes it easy to load promos from config.
 */
export const discountRules = {
  percentOff: ({ percent, minSubtotal = 0 }) => (cart) =>
    cart.subtotal() >= toCents(minSubtotal) ? Math.round((cart.subtotal() * percent) / 100) : 0,

  buyXGetY: ({ sku, buy, free }) => (cart) => {
    const line = cart.lines.get(sku);
    if (!line) return 0;
    const groups = Math.floor(line.qty / (buy + free));
    return groups * free * line.unitCents;
  },

  fixedOff: ({ amount, minSubtotal = 0 }) => (cart) =>
    cart.subtotal() >= toCents(minSubtotal) ? Math.min(toCents(amount), cart.subtotal()) : 0,
};

export class Cart {
  /**
   * @param {{ taxRate?: number, currency?: string, maxQtyPerLine?: number }} [opts]
   */
  constructor({ taxRate = 0, currency = 'USD', maxQtyPerLine = 99 } = {}) {
    this.lines = new Map();
    this.taxRate = taxRate;
    this.currency = currency;
    this.maxQtyPerLine = maxQtyPerLine;
    this.coupons = new Map();
    this.listeners = new Set();
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _changed(reason) {
    const snapshot = this.summary();
    this.listeners.forEach((fn) => fn(reason, snapshot));
  }

  /**
   * @param {{ sku: string, name: string, price: number, taxable?: boolean }} product
   * @param {number} [qty]
   */
  add(product, qty = 1) {
    if (!Number.isInteger(qty) || qty <= 0) {
      throw new CartError('BAD_QTY', `quantity must be a positive integer, got ${qty}`);
    }
    const existing = this.lines.get(product.sku);
    const newQty = (existing ? existing.qty : 0) + qty;
    if (newQty > this.maxQtyPerLine) {
      throw new CartError('QTY_LIMIT', `at most ${this.maxQtyPerLine} of ${product.name}`);
    }
    this.lines.set(product.sku, {
      sku: product.sku,
      name: product.name,
      unitCents: toCents(product.price),
      taxable: product.taxable !== false,
      qty: newQty,
    });
    this._changed('add');
    return this;
  }

  setQuantity(sku, qty) {
    const line = this.lines.get(sku);
    if (!line) throw new CartError('NOT_FOUND', `no line for ${sku}`);
    if (qty <= 0) {
      this.lines.delete(sku);
    } else {
      line.qty = Math.min(qty, this.maxQtyPerLine);
    }
    this._changed('quantity');
    return this;
  }

  remove(sku) {
    const removed = this.lines.delete(sku);
    if (removed) this._changed('remove');
    return removed;
  }

  applyCoupon(code, rule) {
    if (this.coupons.has(code)) throw new CartError('DUPLICATE', `coupon ${code} already applied`);
    this.coupons.set(code, rule);
    this._changed('coupon');
  }

  subtotal() {
    let sum = 0;
    for (const line of this.lines.values()) sum += line.unitCents * line.qty;
    return sum;
  }

  discount() {
    let total = 0;
    for (const rule of this.coupons.values()) total += rule(this);
    return Math.min(total, this.subtotal());
  }

  tax() {
    const taxable = [...this.lines.values()]
      .filter((l) => l.taxable)
      .reduce((acc, l) => acc + l.unitCents * l.qty, 0);
    if (taxable === 0) return 0;
    // spread the discount proportionally over taxable items
    const share = this.subtotal() ? taxable / this.subtotal() : 0;
    const discountedTaxable = taxable - this.discount() * share;
    return Math.round(discountedTaxable * this.taxRate);
  }

  total() {
    return this.subtotal() - this.discount() + this.tax();
  }

  itemCount() {
    return [...this.lines.values()].reduce((n, l) => n + l.qty, 0);
  }

  summary() {
    const fmt = (c) => formatMoney(c, this.currency);
    return {
      items: [...this.lines.values()].map((l) => ({
        sku: l.sku,
        name: l.name,
        qty: l.qty,
        lineTotal: fmt(l.unitCents * l.qty),
      })),
      count: this.itemCount(),
      subtotal: fmt(this.subtotal()),
      discount: fmt(this.discount()),
      tax: fmt(this.tax()),
      total: fmt(this.total()),
      coupons: [...this.coupons.keys()],
    };
  }

  toJSON() {
    return { lines: [...this.lines.values()], coupons: [...this.coupons.keys()] };
  }
}
