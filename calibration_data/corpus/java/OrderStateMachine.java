import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * Lifecycle of a customer order, modelled as an explicit finite state machine.
 * Each state declares which events it accepts and where they lead.
 */
public class OrderStateMachine {

    public enum Event { PAY, SHIP, DELIVER, CANCEL, REFUND }

    public enum State {
        CREATED {
            @Override State on(Event e) {
                return switch (e) {
                    case PAY -> PAID;
                    case CANCEL -> CANCELLED;
                    default -> null;
                };
            }
        },
        PAID {
            @Override State on(Event e) {
                return switch (e) {
                    case SHIP -> SHIPPED;
                    case CANCEL, REFUND -> REFUNDED;
                    default -> null;
                };
            }
        },
        SHIPPED {
            @Override State on(Event e) {
                return e == Event.DELIVER ? DELIVERED : null;
            }
        },
        DELIVERED {
            @Override State on(Event e) {
                return e == Event.REFUND ? REFUNDED : null;
            }
        },
        CANCELLED, REFUNDED;

        /** Returns the next state, or null if the event is not allowed here. */
        State on(Event e) {
            return null;
        }

        boolean isTerminal() {
            return EnumSet.allOf(Event.class).stream().allMatch(ev -> on(ev) == null);
        }
    }

    public record Transition(State from, Event event, State to) { }

    public interface Listener {
        void onTransition(String orderId, Transition t);
    }

    private final String orderId;
    private State state = State.CREATED;
    private final List<Transition> history = new ArrayList<>();
    private final List<Listener> listeners = new ArrayList<>();

    public OrderStateMachine(String orderId) {
        this.orderId = orderId;
    }

    public void addListener(Listener l) {
        listeners.add(l);
    }

    public State state() {
        return state;
    }

    public boolean canFire(Event e) {
        return state.on(e) != null;
    }

    public Set<Event> allowedEvents() {
        Set<Event> allowed = EnumSet.noneOf(Event.class);
        for (Event e : Event.values()) {
            if (canFire(e)) allowed.add(e);
        }
        return allowed;
    }

    public State fire(Event e) {
        State next = state.on(e);
        if (next == null) {
            throw new IllegalStateException(
                    "order " + orderId + ": event " + e + " not allowed in state " + state);
        }
        Transition t = new Transition(state, e, next);
        state = next;
        history.add(t);
        listeners.forEach(l -> l.onTransition(orderId, t));
        return next;
    }

    public List<Transition> history() {
        return Collections.unmodifiableList(history);
    }

    public static void main(String[] args) {
        OrderStateMachine order = new OrderStateMachine("ORD-42");
        order.addListener((id, t) -> System.out.println(id + ": " + t.from() + " --" + t.event() + "--> " + t.to()));
        order.fire(Event.PAY);
        order.fire(Event.SHIP);
        System.out.println("allowed now: " + order.allowedEvents());
        try {
            order.fire(Event.CANCEL);
        } catch (IllegalStateException ex) {
            System.out.println("rejected: " + ex.getMessage());
        }
        order.fire(Event.DELIVER);
        order.fire(Event.REFUND);
        System.out.println("terminal? " + order.state().isTerminal() + ", steps=" + order.history().size());
    }
}
