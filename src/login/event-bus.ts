/**
 * The event bus services publish their changes on, and notifiers subscribe to.
 *
 * A service never calls its users' listeners straight from the code that made a change: it
 * publishes an event on a topic, and whoever tells clients subscribes. In one process the bus is
 * `InProcessBus`; across nodes an implementation on a message system (NATS, PostgreSQL
 * LISTEN/NOTIFY) replaces it behind this interface, and services do not change.
 *
 * The contract every implementation keeps:
 * - Events are plain JSON-compatible values (no capabilities, no class instances, no bigint:
 *   send decimal strings), so they can cross a network.
 * - Delivery is asynchronous (never inside `publish`), and in publish order per topic, for every
 *   subscriber subscribed when the event was published. `publish` returns a promise that settles
 *   once every subscriber in this process has been handed the event: a service that must tell
 *   its local listeners before doing something else (revoking the logins that listen) awaits it.
 * - A subscriber that throws is isolated: the others still get the event.
 * - `subscribe` returns an unsubscribe function; once called, no further event reaches it.
 *
 * Tests: test/login/event-bus.test.ts
 */

/** A typed topic name: `topic<WalletUpdated>("wallet.updated")`. */
export interface Topic<E> {
  readonly name: string;
  /** Phantom: carries the event type. Never set. */
  readonly __event?: E;
}

export function topic<E>(name: string): Topic<E> {
  return Object.freeze({ name });
}

export interface EventBus {
  publish<E>(topic: Topic<E>, event: E): Promise<void>;
  subscribe<E>(topic: Topic<E>, handler: (event: E) => void): () => void;
}

interface Delivery {
  readonly handlers: ReadonlyArray<(event: unknown) => void>;
  readonly event: unknown;
  readonly delivered: () => void;
}

/** The bus within one process: delivers on a microtask, in order, to subscribers of the topic. */
export class InProcessBus implements EventBus {
  readonly #subscribers = new Map<string, Set<(event: unknown) => void>>();
  readonly #queue: Delivery[] = [];
  #scheduled = false;
  /** Called with what a subscriber threw (default: ignored). */
  onHandlerError: (error: unknown, topic: string) => void = () => {};

  publish<E>(t: Topic<E>, event: E): Promise<void> {
    const set = this.#subscribers.get(t.name);
    if (set === undefined || set.size === 0) return Promise.resolve();
    const handlers = [...set];
    let delivered!: () => void;
    const done = new Promise<void>((resolve) => {
      delivered = resolve;
    });
    this.#queue.push({
      delivered,
      handlers: handlers.map((h) => (e: unknown) => {
        // Unsubscribed meanwhile: skip.
        if (this.#subscribers.get(t.name)?.has(h)) {
          try {
            h(e);
          } catch (err) {
            this.onHandlerError(err, t.name);
          }
        }
      }),
      event,
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#drain());
    }
    return done;
  }

  subscribe<E>(t: Topic<E>, handler: (event: E) => void): () => void {
    let set = this.#subscribers.get(t.name);
    if (set === undefined) {
      set = new Set();
      this.#subscribers.set(t.name, set);
    }
    const h = handler as (event: unknown) => void;
    set.add(h);
    return () => {
      const s = this.#subscribers.get(t.name);
      s?.delete(h);
      if (s?.size === 0) this.#subscribers.delete(t.name);
    };
  }

  /** Subscribers of `t` (for tests and stats). */
  subscribers(t: Topic<unknown>): number {
    return this.#subscribers.get(t.name)?.size ?? 0;
  }

  #drain(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const { handlers, event, delivered } = this.#queue.shift() as Delivery;
      for (const h of handlers) h(event);
      delivered();
    }
  }
}
