/**
 * A bounded notifier: how a service tells clients' listener capabilities about events without
 * letting one slow, hostile or duplicated listener cost the server without bound.
 *
 * Invariants:
 * - At most `maxInFlight` deliveries to one listener are unanswered at once. Events that arrive
 *   while it is that far behind are dropped, and once it has answered them all it gets exactly one
 *   `dropped` notice (how many, and the last one) before deliveries resume. Nothing queues.
 * - One listener per underlying capability: registering the same client capability again (however
 *   many times the client sends it) changes nothing.
 * - An owner (one attachment: one device) registers at most `maxPerOwner` listeners; one more
 *   fails with PARALLAX_ERR_QUOTA.
 * - A listener is removed and its capability disposed when a delivery to it fails, when it is
 *   removed, and when its owner goes (`removeOwner`, called from `detached`). Removing an owner
 *   touches only that owner's listeners: one device leaving never silences another.
 * - The notifier owns every listener capability it accepted; `add` disposes one it refuses.
 *
 * Tests: test/login/notifier.test.ts
 */
import { type Capability, type CapHook, unwrapScope } from "../caps/index.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { DetachReason } from "./grant.js";

export interface NotifierOptions<L extends Capability, E> {
  /** Unanswered deliveries one listener may have; more events are dropped. Default 32. */
  readonly maxInFlight?: number;
  /** Listeners one owner (attachment) may register. Default 8. */
  readonly maxPerOwner?: number;
  /** Sends one event to one listener. */
  readonly deliver: (listener: L, event: E) => PromiseLike<unknown>;
  /** Sent once a listener that fell behind has caught up again. */
  readonly dropped?: (
    listener: L,
    info: { readonly count: number; readonly last: E },
  ) => PromiseLike<unknown>;
  /** Sent when a listener is removed for a reason the client should hear (not disconnects). */
  readonly closed?: (listener: L, reason: DetachReason) => PromiseLike<unknown>;
}

class Channel<L extends Capability, E> {
  inFlight = 0;
  droppedCount = 0;
  lastDropped: E | undefined;
  closed = false;

  constructor(
    readonly listener: L,
    readonly key: CapHook,
    readonly owner: object,
  ) {}
}

export class Notifier<L extends Capability, E> {
  readonly maxInFlight: number;
  readonly maxPerOwner: number;
  readonly #options: NotifierOptions<L, E>;
  readonly #byKey = new Map<CapHook, Channel<L, E>>();
  readonly #byOwner = new Map<object, Set<Channel<L, E>>>();

  constructor(options: NotifierOptions<L, E>) {
    this.#options = options;
    this.maxInFlight = positive("maxInFlight", options.maxInFlight ?? 32);
    this.maxPerOwner = positive("maxPerOwner", options.maxPerOwner ?? 8);
  }

  /** Listeners registered. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Listeners `owner` registered. */
  countOf(owner: object): number {
    return this.#byOwner.get(owner)?.size ?? 0;
  }

  /**
   * Registers `listener` for `owner`, taking over its reference. False (and the stub disposed)
   * when the same capability is registered already; QUOTA when the owner has `maxPerOwner`.
   */
  add(owner: object, listener: L): boolean {
    const key = capabilityKey(listener);
    if (this.#byKey.has(key)) {
      listener.dispose();
      return false;
    }
    let mine = this.#byOwner.get(owner);
    if ((mine?.size ?? 0) >= this.maxPerOwner) {
      listener.dispose();
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this attachment has ${this.maxPerOwner} listeners registered already (at most ${this.maxPerOwner})`,
      );
    }
    if (mine === undefined) {
      mine = new Set();
      this.#byOwner.set(owner, mine);
    }
    const channel = new Channel<L, E>(listener, key, owner);
    mine.add(channel);
    this.#byKey.set(key, channel);
    return true;
  }

  /** Sends `event` to every listener (or those whose owner `to` accepts). */
  notify(event: E, to?: (owner: object) => boolean): void {
    for (const c of [...this.#byKey.values()]) {
      if (to === undefined || to(c.owner)) this.#deliver(c, event);
    }
  }

  /** Removes every listener of `owner`, telling each why unless it disconnected. */
  removeOwner(owner: object, reason?: DetachReason): void {
    const mine = this.#byOwner.get(owner);
    if (mine === undefined) return;
    for (const c of [...mine]) this.#close(c, reason);
  }

  /** Removes every listener, telling each why unless it disconnected. */
  clear(reason?: DetachReason): void {
    for (const c of [...this.#byKey.values()]) this.#close(c, reason);
  }

  #deliver(c: Channel<L, E>, event: E): void {
    if (c.closed) return;
    if (c.inFlight >= this.maxInFlight) {
      c.droppedCount++;
      c.lastDropped = event;
      return;
    }
    this.#send(c, () => this.#options.deliver(c.listener, event));
  }

  #send(c: Channel<L, E>, call: () => PromiseLike<unknown>): void {
    c.inFlight++;
    let sent: PromiseLike<unknown>;
    try {
      sent = call();
    } catch {
      c.inFlight--;
      this.#close(c, undefined);
      return;
    }
    Promise.resolve(sent).then(
      () => this.#answered(c),
      () => {
        c.inFlight--;
        this.#close(c, undefined);
      },
    );
  }

  #answered(c: Channel<L, E>): void {
    c.inFlight--;
    if (c.closed || c.droppedCount === 0 || c.inFlight > 0) return;
    const info = { count: c.droppedCount, last: c.lastDropped as E };
    c.droppedCount = 0;
    c.lastDropped = undefined;
    const dropped = this.#options.dropped;
    if (dropped !== undefined) this.#send(c, () => dropped(c.listener, info));
  }

  #close(c: Channel<L, E>, reason: DetachReason | undefined): void {
    if (c.closed) return;
    c.closed = true;
    this.#byKey.delete(c.key);
    const mine = this.#byOwner.get(c.owner);
    mine?.delete(c);
    if (mine?.size === 0) this.#byOwner.delete(c.owner);
    const closed = this.#options.closed;
    if (reason !== undefined && reason.kind !== "disconnected" && closed !== undefined) {
      try {
        Promise.resolve(closed(c.listener, reason)).then(undefined, () => {});
      } catch {
        // the notice is a courtesy
      }
    }
    c.listener.dispose();
  }
}

/** What identifies a capability across stubs: the hook under every scope mark. */
export function capabilityKey(cap: Capability): CapHook {
  return unwrapScope(cap.$hook).hook;
}

function positive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `Notifier ${name} must be a positive integer; got ${n}`);
  }
  return n;
}
