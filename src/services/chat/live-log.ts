/**
 * `LiveLog`: a room's (or an inbox's) window of its newest messages in memory — a `Feed` fed by
 * the store's answers, in sequence order even when answers arrive out of it — and `LogReader`, one
 * device's listener on it: a `FeedReader` plus the ephemeral notices (typing, presence,
 * invitations) that may be dropped when the listener lags.
 *
 * Invariants:
 * - The feed holds at most `window` entries and, given `maxBytes`, at most that many bytes of them
 *   by `sizeOf` (always the newest one at least): 4000-character messages must not pin 16 MB per
 *   room. What goes is the oldest, and readers behind it hear `unrecoverable`, as for the window.
 * - The feed holds exactly the stored messages with seq in (evictedUpTo, lastSeq], in order:
 *   `arrived` appends only the message after the last one and keeps later ones aside until the
 *   gap is filled (`pending`), and ignores what it has already.
 * - While the log is loading (`loaded` false) arrivals are only kept aside; `load` puts the
 *   store's snapshot in and then what arrived meanwhile, so nothing committed during the load is
 *   lost or doubled.
 * - A reader delivers each message at most once and in order, with the gap-free guarantees of
 *   `FeedReader`; at most `maxEphemeralInFlight` notices are unanswered at once (more are
 *   dropped: they describe a moment, not history); once closed it sends nothing more.
 * - A reader owns its listener capability and disposes it exactly once, when closed.
 *
 * Tests: test/services/chat/chat-recovery.test.ts, test/services/chat/live-log.test.ts
 */
import type { Capability } from "../../caps/index.js";
import { Feed, type FeedEntry, FeedReader } from "../../login/feed.js";

export interface LiveLogBounds<E> {
  /** Bytes the window may hold by `sizeOf`; beyond, the oldest go. Default: no byte bound. */
  readonly maxBytes?: number;
  readonly sizeOf?: (entry: E) => number;
}

export class LiveLog<E extends FeedEntry> {
  readonly feed: Feed<E>;
  readonly #pending = new Map<number, E>();
  readonly #maxBytes: number;
  readonly #sizeOf: (entry: E) => number;
  #bytes = 0;
  #loaded = false;
  /** Told of every entry appended, in order. */
  onAppend: (entry: E) => void = () => {};

  constructor(window: number, bounds: LiveLogBounds<E> = {}) {
    this.feed = new Feed<E>({ window });
    this.#maxBytes = bounds.maxBytes ?? Number.POSITIVE_INFINITY;
    this.#sizeOf = bounds.sizeOf ?? (() => 0);
  }

  /** Bytes the window holds, by `sizeOf`. */
  get bytes(): number {
    return this.#bytes;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  get lastSeq(): number {
    return this.feed.lastSeq;
  }

  /** Entries kept aside, waiting for a gap to fill (or the load). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Puts the store's newest entries in (oldest first), then whatever arrived during the load. */
  load(entries: readonly E[]): void {
    this.feed.preload(entries);
    for (const e of this.feed.read(this.feed.evictedUpTo, this.feed.size).entries)
      this.#bytes += this.#sizeOf(e);
    this.#trim();
    this.#loaded = true;
    this.#drain();
  }

  /** Drops the oldest entries while the window is over its byte bound (never the newest). */
  #trim(): void {
    while (this.#bytes > this.#maxBytes && this.feed.size > 1) {
      const dropped = this.feed.dropOldest();
      if (dropped === undefined) return;
      this.#bytes -= this.#sizeOf(dropped);
    }
  }

  /** A stored entry, from a write's answer (in any order). */
  arrived(entry: E): void {
    if (entry.seq <= this.feed.lastSeq) return;
    this.#pending.set(entry.seq, entry);
    if (this.#loaded) this.#drain();
  }

  #drain(): void {
    for (const seq of [...this.#pending.keys()]) if (seq <= this.feed.lastSeq) this.#pending.delete(seq);
    for (let next = this.#pending.get(this.feed.lastSeq + 1); next !== undefined; ) {
      this.#pending.delete(next.seq);
      if (this.feed.size >= this.feed.window) {
        const oldest = this.feed.read(this.feed.evictedUpTo, 1).entries[0];
        if (oldest !== undefined) this.#bytes -= this.#sizeOf(oldest);
      }
      this.feed.append(next);
      this.#bytes += this.#sizeOf(next);
      this.#trim();
      this.onAppend(next);
      next = this.#pending.get(this.feed.lastSeq + 1);
    }
  }
}

export interface LogReaderOptions<E extends FeedEntry, L extends Capability> {
  readonly log: LiveLog<E>;
  readonly listener: L;
  readonly maxInFlight: number;
  readonly maxEphemeralInFlight: number;
  readonly deliver: (listener: L, entry: E) => PromiseLike<unknown>;
  readonly unrecoverable: (listener: L, after: number, resumedFrom: number) => PromiseLike<unknown>;
  /** The reader closed itself (a delivery failed): unregister it. */
  readonly onFailed: (reader: LogReader<E, L>) => void;
}

export class LogReader<E extends FeedEntry, L extends Capability> {
  readonly listener: L;
  readonly #reader: FeedReader<E>;
  readonly #maxEphemeral: number;
  #ephemeral = 0;
  #closed = false;

  constructor(options: LogReaderOptions<E, L>) {
    this.listener = options.listener;
    this.#maxEphemeral = options.maxEphemeralInFlight;
    const log = options.log;
    this.#reader = new FeedReader<E>({
      maxInFlight: options.maxInFlight,
      source: (after, limit) => log.feed.read(after, limit),
      deliver: (e) => options.deliver(this.listener, e),
      unrecoverable: (after, from) => options.unrecoverable(this.listener, after, from),
      onFailed: () => {
        this.close();
        options.onFailed(this);
      },
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The last sequence delivered (or skipped). */
  get cursor(): number {
    return this.#reader.cursor;
  }

  /** Starts after `after` (0: live from now), replaying what the log holds first. */
  start(after: number, liveFrom: number): void {
    this.#reader.start(after, liveFrom);
  }

  offer(entry: E): void {
    if (!this.#closed) this.#reader.offer(entry);
  }

  /** A notice that may be dropped when the listener lags. */
  notice(send: (listener: L) => PromiseLike<unknown>): void {
    if (this.#closed || this.#ephemeral >= this.#maxEphemeral) return;
    this.#ephemeral++;
    let sent: PromiseLike<unknown>;
    try {
      sent = send(this.listener);
    } catch {
      this.#ephemeral--;
      return;
    }
    Promise.resolve(sent).then(
      () => {
        this.#ephemeral--;
      },
      () => {
        this.#ephemeral--;
      },
    );
  }

  /** Stops and releases the listener; `farewell`, if given, is its last call (a courtesy). */
  close(farewell?: (listener: L) => PromiseLike<unknown>): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader.close();
    if (farewell !== undefined) {
      try {
        Promise.resolve(farewell(this.listener)).then(undefined, () => {});
      } catch {
        // the farewell is a courtesy
      }
    }
    this.listener.dispose();
  }
}
