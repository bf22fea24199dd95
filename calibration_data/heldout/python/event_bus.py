"""In-process publish/subscribe event bus supporting sync and async handlers."""
import asyncio
import fnmatch
import inspect
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

logger = logging.getLogger("eventbus")

Handler = Callable[["Event"], Union[None, Awaitable[None]]]


@dataclass
class Event:
    topic: str
    payload: Dict[str, Any] = field(default_factory=dict)
    source: Optional[str] = None


@dataclass
class Subscription:
    pattern: str
    handler: Handler
    priority: int = 0
    once: bool = False

    def matches(self, topic: str) -> bool:
        return fnmatch.fnmatchcase(topic, self.pattern)


class EventBus:
    """Routes events to handlers whose glob pattern matches the topic.

    Handlers with a higher priority are called first. A handler that raises
    is logged and skipped so that one faulty subscriber cannot break others.
    """

    def __init__(self) -> None:
        self._subs: List[Subscription] = []
        self.dead_letters: List[Event] = []
        self.stats: Dict[str, int] = defaultdict(int)

    def subscribe(self, pattern: str, handler: Optional[Handler] = None, *,
                  priority: int = 0, once: bool = False):
        def register(fn: Handler) -> Handler:
            self._subs.append(Subscription(pattern, fn, priority, once))
            self._subs.sort(key=lambda s: -s.priority)
            return fn

        if handler is not None:
            return register(handler)
        return register

    def unsubscribe(self, handler: Handler) -> int:
        before = len(self._subs)
        self._subs = [s for s in self._subs if s.handler is not handler]
        return before - len(self._subs)

    def _targets(self, event: Event) -> List[Subscription]:
        targets = [s for s in self._subs if s.matches(event.topic)]
        for s in targets:
            if s.once:
                self._subs.remove(s)
        return targets

    async def publish(self, event: Event) -> int:
        targets = self._targets(event)
        self.stats[event.topic] += 1
        if not targets:
            self.dead_letters.append(event)
            return 0
        delivered = 0
        for sub in targets:
            try:
                result = sub.handler(event)
                if inspect.isawaitable(result):
                    await result
                delivered += 1
            except Exception:
                logger.exception("handler %s failed for %s", sub.handler.__name__, event.topic)
        return delivered

    def publish_sync(self, event: Event) -> int:
        return asyncio.run(self.publish(event))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    bus = EventBus()
    audit: List[str] = []

    @bus.subscribe("order.*", priority=10)
    def record(event: Event) -> None:
        audit.append(event.topic)

    @bus.subscribe("order.paid")
    async def send_receipt(event: Event) -> None:
        await asyncio.sleep(0.01)
        print(f"receipt sent for order {event.payload['id']}")

    @bus.subscribe("order.cancelled", once=True)
    def broken(event: Event) -> None:
        raise RuntimeError("refund service offline")

    async def main() -> None:
        await bus.publish(Event("order.created", {"id": 7}))
        await bus.publish(Event("order.paid", {"id": 7}))
        await bus.publish(Event("order.cancelled", {"id": 8}))
        await bus.publish(Event("user.signup", {"name": "lee"}))

    asyncio.run(main())
    print("audit:", audit)
    print("dead letters:", [e.topic for e in bus.dead_letters])
