/**
 * Feeds: ordered, bounded logs keyed by sequence, and readers that deliver them to one listener
 * each with no gap and no duplicate — how chat rooms, inboxes and the router's topics recover
 * after a dropped connection or a slow listener.
 *
 * A `Feed` keeps the last `window` entries appended to it, in increasing `seq` (sequences need not
 * be contiguous: a topic's entries carry the router's global sequence), fewer when its owner also
 * bounds it by size and drops the oldest (`dropOldest`: lost to readers exactly as if the window
 * had evicted them). A `FeedReader` is one
 * listener's cursor: it delivers live entries while the listener keeps up, and when the listener
 * falls `maxInFlight` behind it stops taking live entries and, once answered, reads what it missed
 * from its source instead. Nothing is queued per listener beyond `maxInFlight` calls.
 *
 * Invariants:
 * - A reader delivers entries in increasing `seq`, each at most once, and every entry its source
 *   returns after its cursor exactly once, unless the source says they are lost: then the
 *   listener hears `unrecoverable(after, resumedFrom)` before the first entry at or after
 *   `resumedFrom`.
 * - At most `maxInFlight` deliveries (notices included) to one listener are unanswered at once,
 *   even from a source that returns more entries than the `limit` it was asked for.
 * - A delivery that fails closes the reader (`onFailed` runs once); a closed reader delivers
 *   nothing more.
 * - `offer` and `start` run synchronously with the appends they see: an entry appended after
 *   `start` returns is either delivered live or read from the source, never both, never neither —
 *   also when the listener's `deliver` appends (and offers) synchronously while the reader is
 *   replaying from its source.
 * - A resume point (`start`'s `after`) is a non-negative integer; anything else is refused with
 *   PARALLAX_ERR_BAD_ARGUMENT before the reader changes.
 *
 * Tests: test/login/feed.test.ts
 */
import { ErrorCode, ParallaxError } from "../errors.js";

export interface FeedEntry {
  readonly seq: number;
}

/** What a reader's source answers for "entries after `after`". */
export interface FeedPage<E extends FeedEntry> {
  /** In increasing seq, all > `after` (or ≥ `resumedFrom`), those the reader's listener may see. */
  readonly entries: readonly E[];
  /** Set when entries after `after` were lost: reading resumes at this sequence. */
  readonly resumedFrom?: number;
  /** The highest sequence the source considered: live entries up to it are not delivered again. */
  readonly upTo: number;
}

export class Feed<E extends FeedEntry> {
  readonly window: number;
  readonly #entries: E[] = [];
  /** Index of the oldest retained entry in #entries (the array is compacted now and then). */
  #head = 0;
  #lastSeq: number;
  /** The highest sequence evicted (0: none). */
  #evictedUpTo = 0;

  constructor(options: { readonly window: number; readonly lastSeq?: number }) {
    if (!Number.isSafeInteger(options.window) || options.window < 1) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a feed's window must be a positive integer`);
    }
    const lastSeq = options.lastSeq ?? 0;
    if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a feed's lastSeq must be a non-negative integer`);
    }
    this.window = options.window;
    this.#lastSeq = lastSeq;
    // Entries before lastSeq were not kept here (a restart): they count as evicted.
    this.#evictedUpTo = this.#lastSeq;
  }

  /** The sequence of the newest entry appended (or the one the feed started after). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Entries retained. */
  get size(): number {
    return this.#entries.length - this.#head;
  }

  /** The highest sequence no longer retained (0 if none was ever dropped). */
  get evictedUpTo(): number {
    return this.#evictedUpTo;
  }

  /** The oldest retained entry's sequence, or undefined when empty. */
  get firstSeq(): number | undefined {
    return this.#entries[this.#head]?.seq;
  }

  /** Appends `entry`, whose seq must exceed every earlier one; evicts beyond the window. */
  append(entry: E): void {
    if (!(entry.seq > this.#lastSeq)) {
      throw new ParallaxError(
        ErrorCode.FAILED,
        `feed entries must increase: ${entry.seq} after ${this.#lastSeq}`,
      );
    }
    this.#entries.push(entry);
    this.#lastSeq = entry.seq;
    while (this.size > this.window) {
      this.#evictedUpTo = (this.#entries[this.#head] as E).seq;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /**
   * Evicts the oldest retained entry and answers it (for owners that also bound their feeds by
   * size); readers after it then learn it is lost, as for the window. Undefined when empty.
   */
  dropOldest(): E | undefined {
    const e = this.#entries[this.#head];
    if (e === undefined) return undefined;
    this.#evictedUpTo = e.seq;
    this.#head++;
    if (this.#head === this.#entries.length) {
      this.#entries.length = 0;
      this.#head = 0;
    }
    return e;
  }

  /**
   * Loads the newest stored entries (oldest first) into an empty feed after a restart: reading
   * before the first of them is then `unrecoverable`, not silently empty.
   */
  preload(entries: readonly E[]): void {
    if (this.size > 0) throw new ParallaxError(ErrorCode.FAILED, "preload needs an empty feed");
    const kept = entries.slice(-this.window);
    const first = kept[0];
    const last = kept.at(-1);
    if (first === undefined || last === undefined) return;
    for (let i = 1; i < kept.length; i++) {
      if (!((kept[i] as E).seq > (kept[i - 1] as E).seq)) {
        throw new ParallaxError(ErrorCode.FAILED, "preloaded feed entries must increase");
      }
    }
    this.#entries.push(...kept);
    this.#lastSeq = Math.max(this.#lastSeq, last.seq);
    this.#evictedUpTo = first.seq - 1;
  }

  /** Whether entries after `after` were evicted (a reader resuming there has lost some). */
  lostAfter(after: number): boolean {
    return this.#evictedUpTo > after;
  }

  /**
   * Up to `limit` retained entries with seq > `after` that `keep` accepts, in order, and how far
   * it looked. When some after `after` were evicted, `resumedFrom` says where retention starts.
   */
  read(after: number, limit: number, keep?: (e: E) => boolean): FeedPage<E> {
    const out: E[] = [];
    let resumedFrom: number | undefined;
    if (this.#evictedUpTo > after) {
      resumedFrom = this.firstSeq ?? this.#lastSeq + 1;
    }
    let i = this.#indexAfter(after);
    let upTo = Math.max(after, this.#evictedUpTo);
    for (; i < this.#entries.length && out.length < limit; i++) {
      const e = this.#entries[i] as E;
      upTo = e.seq;
      if (keep === undefined || keep(e)) out.push(e);
    }
    if (i >= this.#entries.length) upTo = Math.max(upTo, this.#lastSeq);
    return resumedFrom === undefined ? { entries: out, upTo } : { entries: out, upTo, resumedFrom };
  }

  /** The newest `limit` retained entries `keep` accepts with seq < `before`, oldest first. */
  readBefore(before: number, limit: number, keep?: (e: E) => boolean): E[] {
    const out: E[] = [];
    let i = this.#indexAtOrAfter(before) - 1;
    for (; i >= this.#head && out.length < limit; i--) {
      const e = this.#entries[i] as E;
      if (keep === undefined || keep(e)) out.push(e);
    }
    return out.reverse();
  }

  /** Index of the first retained entry with seq > `after`. */
  #indexAfter(after: number): number {
    return this.#search((seq) => seq <= after);
  }

  /** Index of the first retained entry with seq ≥ `at`. */
  #indexAtOrAfter(at: number): number {
    return this.#search((seq) => seq < at);
  }

  /** Index of the first retained entry for which `before` is false (`before` holds for a prefix). */
  #search(before: (seq: number) => boolean): number {
    let lo = this.#head;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before((this.#entries[mid] as E).seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export interface FeedReaderOptions<E extends FeedEntry> {
  /** Unanswered deliveries allowed. Default 32. */
  readonly maxInFlight?: number;
  /** Reads entries after `after` (at most `limit`) for this reader, already filtered for it. */
  readonly source: (after: number, limit: number) => FeedPage<E>;
  /** Whether a live entry is for this reader (the same filter the source applies). */
  readonly accepts?: (entry: E) => boolean;
  readonly deliver: (entry: E) => PromiseLike<unknown>;
  /** Entries in (after, resumedFrom) are lost to this reader. */
  readonly unrecoverable: (after: number, resumedFrom: number) => PromiseLike<unknown>;
  /** A delivery failed: the reader is closed. */
  readonly onFailed?: (err: unknown) => void;
}

export class FeedReader<E extends FeedEntry> {
  readonly maxInFlight: number;
  readonly #o: FeedReaderOptions<E>;
  /** Everything with seq ≤ cursor was delivered, or is not for this reader. */
  #cursor = 0;
  #inFlight = 0;
  /** Live entries are ignored: the reader reads from the source when it has room. */
  #behind = false;
  #closed = false;
  #pumping = false;
  /** An entry was offered (and ignored) while the pump ran: the page it read may predate it. */
  #offeredWhilePumping = false;

  constructor(options: FeedReaderOptions<E>) {
    this.#o = options;
    this.maxInFlight = options.maxInFlight ?? 32;
    if (!Number.isSafeInteger(this.maxInFlight) || this.maxInFlight < 1) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a reader's maxInFlight must be a positive integer");
    }
  }

  /** The sequence of the last entry delivered (or skipped as not this reader's). */
  get cursor(): number {
    return this.#cursor;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Starts after `after`: live from `liveFrom` (the feed's last sequence now) when `after` is
   * 0 or undefined; otherwise replays from the source first.
   */
  start(after: number | undefined, liveFrom: number): void {
    if (after !== undefined && (!Number.isSafeInteger(after) || after < 0)) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `a resume point must be a non-negative integer; got ${after}`,
      );
    }
    if (after === undefined || after === 0 || after >= liveFrom) {
      this.#cursor = after !== undefined && after > liveFrom ? after : liveFrom;
      return;
    }
    this.#cursor = after;
    this.#behind = true;
    this.#pump();
  }

  /** A live entry was appended to the feed. */
  offer(entry: E): void {
    if (this.#closed || entry.seq <= this.#cursor) return;
    if (this.#behind) {
      // Read from the source later; if the pump is running (a delivery appended synchronously),
      // the page it holds does not have this entry: it must read again before going live.
      if (this.#pumping) this.#offeredWhilePumping = true;
      return;
    }
    if (this.#o.accepts !== undefined && !this.#o.accepts(entry)) {
      this.#cursor = entry.seq;
      return;
    }
    if (this.#inFlight >= this.maxInFlight) {
      this.#behind = true;
      return;
    }
    this.#cursor = entry.seq;
    this.#send(() => this.#o.deliver(entry));
  }

  /** Stops: nothing more is delivered. */
  close(): void {
    this.#closed = true;
  }

  #send(call: () => PromiseLike<unknown>): void {
    this.#inFlight++;
    let sent: PromiseLike<unknown>;
    try {
      sent = call();
    } catch (err) {
      this.#inFlight--;
      this.#fail(err);
      return;
    }
    Promise.resolve(sent).then(
      () => {
        this.#inFlight--;
        if (this.#behind) this.#pump();
      },
      (err: unknown) => {
        this.#inFlight--;
        this.#fail(err);
      },
    );
  }

  #fail(err: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.onFailed?.(err);
  }

  /** Reads from the source while there is room; goes live again once caught up. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#closed && this.#behind && this.#inFlight < this.maxInFlight) {
        const room = this.maxInFlight - this.#inFlight;
        this.#offeredWhilePumping = false;
        const page = this.#o.source(this.#cursor, room);
        if (page.resumedFrom !== undefined && page.resumedFrom > this.#cursor + 1) {
          const after = this.#cursor;
          const from = page.resumedFrom;
          this.#cursor = from - 1;
          this.#send(() => this.#o.unrecoverable(after, from));
          // The notice took one of `room`'s places: read again with the room left.
          continue;
        }
        let full = false;
        for (const e of page.entries) {
          if (this.#closed) return;
          if (e.seq <= this.#cursor) continue;
          if (this.#inFlight >= this.maxInFlight) {
            // The source returned more than `room`: the rest is read again when answered.
            full = true;
            break;
          }
          this.#cursor = e.seq;
          this.#send(() => this.#o.deliver(e));
        }
        if (full) continue;
        if (page.upTo > this.#cursor) this.#cursor = page.upTo;
        if (page.entries.length < room && !this.#offeredWhilePumping) {
          // The source had nothing more: later entries arrive live.
          this.#behind = false;
        }
      }
    } finally {
      this.#pumping = false;
    }
  }
}
