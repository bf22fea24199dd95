"""Simple warehouse inventory tracking with reservations and restock alerts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, Iterable, List, Optional

logger = logging.getLogger(__name__)


class InventoryError(Exception):
    """Base class for inventory problems."""


class UnknownSkuError(InventoryError):
    def __init__(self, sku: str) -> None:
        super().__init__(f"unknown SKU: {sku!r}")
        self.sku = sku


class InsufficientStockError(InventoryError):
    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(
            f"cannot take {requested} of {sku}: only {available} available"
        )
        self.sku = sku
        self.requested = requested
        self.available = available


@dataclass
class Item:
    sku: str
    name: str
    unit_price: float
    quantity: int = 0
    reserved: int = 0
    reorder_level: int = 5
    tags: List[str] = field(default_factory=list)

    @property
    def available(self) -> int:
        return self.quantity - self.reserved

    @property
    def needs_restock(self) -> bool:
        return self.available <= self.reorder_level

    def value(self) -> float:
        return round(self.quantity * self.unit_price, 2)


@dataclass
class Movement:
    sku: str
    delta: int
    reason: str
    timestamp: datetime = field(default_factory=datetime.utcnow)


class Inventory:
    """In-memory inventory keyed by SKU.

    All mutating operations are recorded in a movement log so that the
    history of a product can be audited later.
    """

    def __init__(self) -> None:
        self._items: Dict[str, Item] = {}
        self._log: List[Movement] = []

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, sku: object) -> bool:
        return sku in self._items

    def add_item(self, item: Item) -> None:
        if item.sku in self._items:
            raise InventoryError(f"duplicate SKU: {item.sku}")
        self._items[item.sku] = item
        if item.quantity:
            self._record(item.sku, item.quantity, "initial stock")

    def get(self, sku: str) -> Item:
        try:
            return self._items[sku]
        except KeyError:
            raise UnknownSkuError(sku) from None

    def receive(self, sku: str, quantity: int) -> Item:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        item = self.get(sku)
        item.quantity += quantity
        self._record(sku, quantity, "received")
        logger.info("received %d x %s (now %d)", quantity, sku, item.quantity)
        return item

    def reserve(self, sku: str, quantity: int) -> None:
        item = self.get(sku)
        if quantity > item.available:
            raise InsufficientStockError(sku, quantity, item.available)
        item.reserved += quantity

    def release(self, sku: str, quantity: int) -> None:
        item = self.get(sku)
        item.reserved = max(0, item.reserved - quantity)

    def ship(self, sku: str, quantity: int) -> None:
        """Ship previously reserved units; unreserved units may also ship."""
        item = self.get(sku)
        if quantity > item.quantity:
            raise InsufficientStockError(sku, quantity, item.quantity)
        from_reserved = min(quantity, item.reserved)
        item.reserved -= from_reserved
        item.quantity -= quantity
        self._record(sku, -quantity, "shipped")
        if item.needs_restock:
            logger.warning("%s is low on stock (%d left)", sku, item.available)

    def low_stock(self) -> List[Item]:
        return sorted(
            (i for i in self._items.values() if i.needs_restock),
            key=lambda i: i.available,
        )

    def total_value(self) -> float:
        return round(sum(i.value() for i in self._items.values()), 2)

    def search(self, text: str = "", tags: Optional[Iterable[str]] = None) -> List[Item]:
        text = text.lower()
        wanted = set(tags or ())
        results = []
        for item in self._items.values():
            if text and text not in item.name.lower() and text not in item.sku.lower():
                continue
            if wanted and not wanted.issubset(item.tags):
                continue
            results.append(item)
        return results

    def history(self, sku: str) -> List[Movement]:
        self.get(sku)
        return [m for m in self._log if m.sku == sku]

    def _record(self, sku: str, delta: int, reason: str) -> None:
        self._log.append(Movement(sku=sku, delta=delta, reason=reason))


def restock_report(inventory: Inventory) -> str:
    lines = ["SKU        NAME                 AVAIL  REORDER"]
    for item in inventory.low_stock():
        lines.append(
            f"{item.sku:<10} {item.name[:20]:<20} {item.available:>5}  {item.reorder_level:>7}"
        )
    if len(lines) == 1:
        lines.append("(nothing to reorder)")
    return "\n".join(lines)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    inv = Inventory()
    inv.add_item(Item("BOLT-M6", "Hex bolt M6x20", 0.12, quantity=400, reorder_level=100))
    inv.add_item(Item("NUT-M6", "Hex nut M6", 0.05, quantity=80, reorder_level=100))
    inv.add_item(Item("WASH-6", "Flat washer 6mm", 0.03, quantity=250, tags=["steel"]))
    inv.reserve("BOLT-M6", 150)
    inv.ship("BOLT-M6", 150)
    inv.ship("WASH-6", 60)
    print(restock_report(inv))
    print("total value:", inv.total_value())
