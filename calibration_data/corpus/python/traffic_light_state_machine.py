import enum
import logging
from typing import Callable, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)


class State(enum.Enum):
    RED = "red"
    RED_AMBER = "red_amber"
    GREEN = "green"
    AMBER = "amber"
    FLASHING = "flashing"
    OFF = "off"


class Event(enum.Enum):
    TICK = enum.auto()
    FAULT = enum.auto()
    RESET = enum.auto()
    POWER_OFF = enum.auto()
    PEDESTRIAN = enum.auto()


class InvalidTransition(RuntimeError):
    pass


Transition = Tuple[State, Event]
Hook = Callable[[State, State, Event], None]

DURATIONS = {
    State.RED: 30,
    State.RED_AMBER: 3,
    State.GREEN: 25,
    State.AMBER: 4,
}


class TrafficLight:
    """A finite-state machine for a single traffic signal.

    Time is measured in ticks; each TICK event advances an internal timer
    and the light changes phase once the phase duration has elapsed.
    """

    TRANSITIONS: Dict[Transition, State] = {
        (State.RED, Event.TICK): State.RED_AMBER,
        (State.RED_AMBER, Event.TICK): State.GREEN,
        (State.GREEN, Event.TICK): State.AMBER,
        (State.AMBER, Event.TICK): State.RED,
        (State.FLASHING, Event.RESET): State.RED,
        (State.OFF, Event.RESET): State.RED,
    }

    def __init__(self, name: str, durations: Optional[Dict[State, int]] = None):
        self.name = name
        self.state = State.RED
        self.durations = {**DURATIONS, **(durations or {})}
        self.elapsed = 0
        self.pedestrian_waiting = False
        self._hooks: List[Hook] = []
        self.history: List[Tuple[State, State, Event]] = []

    def on_change(self, hook: Hook) -> Hook:
        self._hooks.append(hook)
        return hook

    def handle(self, event: Event) -> State:
        if event is Event.FAULT:
            return self._go(State.FLASHING, event)
        if event is Event.POWER_OFF:
            return self._go(State.OFF, event)
        if event is Event.PEDESTRIAN:
            self.pedestrian_waiting = True
            if self.state is State.GREEN:
                # shorten the green phase, but never below 5 ticks
                self.elapsed = max(self.elapsed, self.durations[State.GREEN] - 5)
            return self.state
        if event is Event.TICK:
            if self.state in (State.FLASHING, State.OFF):
                return self.state
            self.elapsed += 1
            if self.elapsed < self.durations[self.state]:
                return self.state

        key = (self.state, event)
        if key not in self.TRANSITIONS:
            raise InvalidTransition(f"{self.name}: {event.name} not allowed in {self.state.name}")
        return self._go(self.TRANSITIONS[key], event)

    def _go(self, new_state: State, event: Event) -> State:
        old = self.state
        self.state = new_state
        self.elapsed = 0
        if new_state is State.RED:
            self.pedestrian_waiting = False
        self.history.append((old, new_state, event))
        logger.debug("%s: %s -> %s on %s", self.name, old.name, new_state.name, event.name)
        for hook in self._hooks:
            try:
                hook(old, new_state, event)
            except Exception:  # a broken hook must not stop the lights
                logger.exception("hook %r failed", hook)
        return new_state

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.handle(Event.TICK)


class Intersection:
    """Two lights that must never be green at the same time."""

    def __init__(self):
        # red must cover the other light's red-amber + green + amber phases
        red = DURATIONS[State.RED_AMBER] + DURATIONS[State.GREEN] + DURATIONS[State.AMBER]
        self.north_south = TrafficLight("NS", durations={State.RED: red})
        self.east_west = TrafficLight("EW", durations={State.RED: red})
        # offset the east-west light by half a cycle
        self.east_west.state = State.RED_AMBER

    def tick(self) -> None:
        self.north_south.handle(Event.TICK)
        self.east_west.handle(Event.TICK)
        self.check_safe()

    def check_safe(self) -> None:
        unsafe = {State.GREEN, State.AMBER, State.RED_AMBER}
        if self.north_south.state in unsafe and self.east_west.state in unsafe:
            for light in (self.north_south, self.east_west):
                light.handle(Event.FAULT)
            raise RuntimeError("conflicting green phases; switched to flashing")


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, format="%(message)s")
    light = TrafficLight("demo", durations={State.RED: 2, State.GREEN: 3})

    @light.on_change
    def announce(old, new, event):
        print(f"[{event.name}] {old.value} -> {new.value}")

    light.run(10)
    light.handle(Event.FAULT)
    light.handle(Event.TICK)
    light.handle(Event.RESET)
    print("final:", light.state, "transitions:", len(light.history))
