/**
 * Feeds and feed readers (src/login/feed.ts). `Feed` is checked against a plain model (random
 * windows, non-contiguous sequences, preloads, filtered reads); `FeedReader` by unit tests and by
 * a property over random interleavings of appends and answers: every delivery is a promise the
 * test resolves (or rejects) by hand, in random order, with the microtasks flushed at random
 * points — no sleeps. Whatever the interleaving, window, maxInFlight, filter and resume point,
 * the listener hears strictly increasing sequences, no duplicates, exactly the accepted entries
 * after its start point except runs that were evicted before it read them — each run announced
 * by `unrecoverable(after, from)` before anything after it — and never more than maxInFlight
 * unanswered deliveries; a rejected delivery closes the reader and nothing is heard after it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { Feed, type FeedPage, FeedReader } from "../../src/login/feed.js";

interface Msg {
  readonly seq: number;
  readonly tag: number;
}

/** Flushes every pending microtask (the reader's answer handlers run there). */
const settle = () => new Promise<void>((r) => setImmediate(r));

function thrown(f: () => unknown): ParallaxError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ParallaxError);
    return err as ParallaxError;
  }
  throw new Error("expected a ParallaxError");
}

function expectError(f: () => unknown, code: ErrorCode, message: string): void {
  const err = thrown(f);
  expect(err.code).toBe(code);
  expect(err.message).toBe(message);
}

const seqs = (page: FeedPage<Msg>) => page.entries.map((e) => e.seq);
const msg = (seq: number, tag = 0): Msg => ({ seq, tag });

// --- Feed --------------------------------------------------------------------------------------

describe("Feed", () => {
  it("refuses a window or lastSeq that is not a (non-negative, positive) integer", () => {
    for (const window of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectError(
        () => new Feed<Msg>({ window }),
        ErrorCode.BAD_ARGUMENT,
        "a feed's window must be a positive integer",
      );
    }
    for (const lastSeq of [-1, 2.5, Number.NaN]) {
      expectError(
        () => new Feed<Msg>({ window: 4, lastSeq }),
        ErrorCode.BAD_ARGUMENT,
        "a feed's lastSeq must be a non-negative integer",
      );
    }
  });

  it("keeps the last `window` entries of non-contiguous sequences, and says how far it evicted", () => {
    const feed = new Feed<Msg>({ window: 3 });
    expect([feed.size, feed.firstSeq, feed.lastSeq, feed.evictedUpTo]).toEqual([0, undefined, 0, 0]);
    for (const s of [2, 5, 6]) feed.append(msg(s));
    expect([feed.size, feed.firstSeq, feed.lastSeq, feed.evictedUpTo]).toEqual([3, 2, 6, 0]);
    feed.append(msg(10));
    feed.append(msg(11));
    expect([feed.size, feed.firstSeq, feed.lastSeq, feed.evictedUpTo]).toEqual([3, 6, 11, 5]);
    expect(seqs(feed.read(0, 10))).toEqual([6, 10, 11]);
  });

  it("refuses an entry that does not increase, and changes nothing", () => {
    const feed = new Feed<Msg>({ window: 3 });
    feed.append(msg(5));
    for (const s of [5, 4, Number.NaN]) {
      expectError(() => feed.append(msg(s)), ErrorCode.FAILED, `feed entries must increase: ${s} after 5`);
    }
    expect([feed.size, feed.lastSeq, feed.evictedUpTo]).toEqual([1, 5, 0]);
    feed.append(msg(6));
    expect(seqs(feed.read(0, 10))).toEqual([5, 6]);
  });

  it("says whether entries after a point were lost", () => {
    const feed = new Feed<Msg>({ window: 2 });
    for (const s of [1, 3, 7, 9]) feed.append(msg(s));
    // 1 and 3 are gone.
    expect(feed.lostAfter(0)).toBe(true);
    expect(feed.lostAfter(2)).toBe(true);
    expect(feed.lostAfter(3)).toBe(false);
    expect(feed.lostAfter(5)).toBe(false);
  });

  it("reads up to `limit` accepted entries after a point, and says how far it looked", () => {
    const feed = new Feed<Msg>({ window: 10 });
    for (let s = 1; s <= 8; s++) feed.append(msg(s * 10, s % 2));
    const odd = (e: Msg) => e.tag === 1;
    expect(feed.read(0, 100)).toEqual({
      entries: [10, 20, 30, 40, 50, 60, 70, 80].map((s) => msg(s, (s / 10) % 2)),
      upTo: 80,
    });
    expect(seqs(feed.read(25, 100))).toEqual([30, 40, 50, 60, 70, 80]);
    // The limit stops the look at the last entry returned: later ones were not considered.
    expect(feed.read(25, 2)).toMatchObject({ upTo: 40 });
    expect(seqs(feed.read(25, 2))).toEqual([30, 40]);
    // With a filter, the entries skipped on the way count as looked at.
    const page = feed.read(10, 2, odd);
    expect(seqs(page)).toEqual([30, 50]);
    expect(page.upTo).toBe(50);
    expect(feed.read(50, 10, odd)).toMatchObject({ upTo: 80 });
    expect(seqs(feed.read(50, 10, odd))).toEqual([70]);
    // Nothing after the end.
    expect(feed.read(80, 5)).toEqual({ entries: [], upTo: 80 });
    expect(feed.read(95, 5)).toEqual({ entries: [], upTo: 95 });
    expect(feed.read(0, 0)).toEqual({ entries: [], upTo: 0 });
  });

  it("reports resumedFrom when entries after the point were evicted", () => {
    const feed = new Feed<Msg>({ window: 3 });
    for (const s of [1, 2, 4, 8, 16]) feed.append(msg(s));
    expect(feed.read(0, 10)).toEqual({ entries: [msg(4), msg(8), msg(16)], upTo: 16, resumedFrom: 4 });
    expect(feed.read(1, 10).resumedFrom).toBe(4);
    expect(feed.read(2, 10).resumedFrom).toBeUndefined();
    expect(feed.read(3, 10).resumedFrom).toBeUndefined();
    expect(seqs(feed.read(3, 10))).toEqual([4, 8, 16]);
  });

  it("after a restart with no entries kept, reports everything before lastSeq as lost", () => {
    const feed = new Feed<Msg>({ window: 3, lastSeq: 100 });
    expect([feed.size, feed.lastSeq, feed.evictedUpTo]).toEqual([0, 100, 100]);
    expect(feed.read(50, 10)).toEqual({ entries: [], upTo: 100, resumedFrom: 101 });
    expect(feed.read(100, 10)).toEqual({ entries: [], upTo: 100 });
    expect(() => feed.append(msg(100))).toThrow(ParallaxError);
    feed.append(msg(101));
    expect(feed.read(50, 10)).toEqual({ entries: [msg(101)], upTo: 101, resumedFrom: 101 });
  });

  it("reads the newest entries before a point, oldest first", () => {
    const feed = new Feed<Msg>({ window: 5 });
    for (const s of [3, 6, 9, 12, 15, 18, 21]) feed.append(msg(s, s % 2));
    // Retained: 9 .. 21.
    expect(feed.readBefore(21, 2).map((e) => e.seq)).toEqual([15, 18]);
    expect(feed.readBefore(20, 2).map((e) => e.seq)).toEqual([15, 18]);
    expect(feed.readBefore(100, 10).map((e) => e.seq)).toEqual([9, 12, 15, 18, 21]);
    expect(feed.readBefore(13, 10).map((e) => e.seq)).toEqual([9, 12]);
    expect(feed.readBefore(9, 10)).toEqual([]);
    expect(feed.readBefore(4, 10)).toEqual([]);
    expect(feed.readBefore(100, 0)).toEqual([]);
    expect(feed.readBefore(100, 2, (e) => e.tag === 1).map((e) => e.seq)).toEqual([15, 21]);
  });

  it("stays correct across its internal compaction (thousands of appends)", () => {
    const feed = new Feed<Msg>({ window: 10 });
    for (let s = 1; s <= 5000; s++) feed.append(msg(s * 2));
    expect([feed.size, feed.firstSeq, feed.lastSeq, feed.evictedUpTo]).toEqual([10, 9982, 10000, 9980]);
    expect(feed.read(0, 3)).toEqual({
      entries: [msg(9982), msg(9984), msg(9986)],
      upTo: 9986,
      resumedFrom: 9982,
    });
    expect(seqs(feed.read(9995, 10))).toEqual([9996, 9998, 10000]);
    expect(feed.readBefore(9990, 2).map((e) => e.seq)).toEqual([9986, 9988]);
    expect(feed.lostAfter(9979)).toBe(true);
    expect(feed.lostAfter(9980)).toBe(false);
  });

  describe("preload", () => {
    it("loads the newest stored entries; reading before the first of them reports resumedFrom", () => {
      const feed = new Feed<Msg>({ window: 4 });
      feed.preload([10, 20, 30, 40, 50, 60].map((s) => msg(s)));
      expect([feed.size, feed.firstSeq, feed.lastSeq, feed.evictedUpTo]).toEqual([4, 30, 60, 29]);
      expect(feed.read(0, 10)).toEqual({
        entries: [30, 40, 50, 60].map((s) => msg(s)),
        upTo: 60,
        resumedFrom: 30,
      });
      expect(feed.read(20, 10).resumedFrom).toBe(30);
      expect(feed.read(29, 10).resumedFrom).toBeUndefined();
      expect(feed.lostAfter(28)).toBe(true);
      expect(feed.lostAfter(29)).toBe(false);
      expect(() => feed.append(msg(60))).toThrow(ParallaxError);
      feed.append(msg(61));
      expect(seqs(feed.read(50, 10))).toEqual([60, 61]);
    });

    it("keeps a restart's lastSeq beyond the preloaded entries (a topic on a global sequence)", () => {
      const feed = new Feed<Msg>({ window: 8, lastSeq: 100 });
      feed.preload([40, 70, 95].map((s) => msg(s)));
      expect([feed.lastSeq, feed.firstSeq]).toEqual([100, 40]);
      expect(feed.read(95, 10)).toEqual({ entries: [], upTo: 100 });
      expect(feed.read(39, 10)).toEqual({ entries: [40, 70, 95].map((s) => msg(s)), upTo: 100 });
      expect(() => feed.append(msg(99))).toThrow(ParallaxError);
    });

    it("refuses entries out of order or a feed that is not empty, and changes nothing", () => {
      const feed = new Feed<Msg>({ window: 4 });
      expectError(
        () => feed.preload([msg(1), msg(3), msg(3)]),
        ErrorCode.FAILED,
        "preloaded feed entries must increase",
      );
      expect([feed.size, feed.lastSeq, feed.evictedUpTo]).toEqual([0, 0, 0]);
      feed.preload([]);
      expect(feed.size).toBe(0);
      feed.preload([msg(1), msg(3)]);
      expectError(() => feed.preload([msg(7)]), ErrorCode.FAILED, "preload needs an empty feed");
      expect(seqs(feed.read(0, 10))).toEqual([1, 3]);
    });

    it("hands a resuming reader the loss notice before the preloaded entries", async () => {
      const feed = new Feed<Msg>({ window: 3 });
      feed.preload([msg(10), msg(20), msg(30)]);
      const h = harness(feed, { maxInFlight: 10 });
      h.reader.start(5, feed.lastSeq);
      expect(h.heard).toEqual(["lost 5..10", 10, 20, 30]);
      await h.answerAll();
      h.append(msg(31));
      expect(h.heard).toEqual(["lost 5..10", 10, 20, 30, 31]);
    });
  });

  it("property: agrees with a model on random appends, preloads, windows and filtered reads", () => {
    type Op =
      | { t: "append"; gap: number; tag: number }
      | { t: "read"; back: number; limit: number; filter: number }
      | { t: "before"; back: number; limit: number; filter: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          t: fc.constant("append" as const),
          gap: fc.integer({ min: 1, max: 4 }),
          tag: fc.nat(2),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          t: fc.constant("read" as const),
          back: fc.integer({ min: -2, max: 30 }),
          limit: fc.nat(6),
          filter: fc.nat(3),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          t: fc.constant("before" as const),
          back: fc.integer({ min: -2, max: 30 }),
          limit: fc.nat(6),
          filter: fc.nat(3),
        }),
      },
    );
    const preloadArb = fc.option(
      fc.record({
        restartAt: fc.nat(5),
        gaps: fc.array(fc.record({ gap: fc.integer({ min: 1, max: 4 }), tag: fc.nat(2) }), { maxLength: 12 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        preloadArb,
        fc.array(op, { maxLength: 60 }),
        (window, pre, ops) => {
          let all: Msg[] = [];
          let evicted = 0;
          let last = 0;
          const filters: ((e: Msg) => boolean)[] = [
            () => true,
            (e) => e.tag === 0,
            (e) => e.tag !== 1,
            () => false,
          ];
          let feed: Feed<Msg>;
          if (pre === null) {
            feed = new Feed<Msg>({ window });
          } else {
            let s = 0;
            const stored = pre.gaps.map(({ gap, tag }) => {
              s += gap;
              return msg(s, tag);
            });
            const restart = s + pre.restartAt;
            feed = new Feed<Msg>({ window, lastSeq: restart });
            feed.preload(stored);
            all = stored.slice(-window);
            evicted = all.length > 0 ? (all[0] as Msg).seq - 1 : restart;
            last = restart;
          }
          for (const o of ops) {
            if (o.t === "append") {
              last += o.gap;
              feed.append(msg(last, o.tag));
              all.push(msg(last, o.tag));
              while (all.length > window) evicted = (all.shift() as Msg).seq;
              continue;
            }
            const keep = o.filter === 0 ? undefined : filters[o.filter];
            const accepted = (e: Msg) => keep === undefined || keep(e);
            const point = last - o.back;
            if (o.t === "read") {
              const page = feed.read(point, o.limit, keep);
              const want = all.filter((e) => e.seq > point && accepted(e)).slice(0, o.limit);
              expect(page.entries).toEqual(want);
              expect(page.resumedFrom).toBe(evicted > point ? (all[0]?.seq ?? last + 1) : undefined);
              // How far it looked: not before the point, past every entry returned, and covering
              // every accepted retained entry up to it; to the end when the limit did not stop it.
              expect(page.upTo).toBeGreaterThanOrEqual(point);
              expect(page.upTo).toBeLessThanOrEqual(Math.max(point, last));
              if (want.length > 0) expect(page.upTo).toBeGreaterThanOrEqual((want.at(-1) as Msg).seq);
              const covered = all.filter((e) => e.seq > point && e.seq <= page.upTo && accepted(e));
              expect(page.entries).toEqual(covered);
              if (want.length < o.limit) expect(page.upTo).toBeGreaterThanOrEqual(last);
            } else {
              const got = feed.readBefore(point, o.limit, keep);
              const before = all.filter((e) => e.seq < point && accepted(e));
              expect(got).toEqual(o.limit === 0 ? [] : before.slice(-o.limit));
            }
          }
          expect([feed.size, feed.firstSeq, feed.lastSeq, feed.evictedUpTo]).toEqual([
            all.length,
            all[0]?.seq,
            last,
            evicted,
          ]);
          for (let a = -1; a <= last + 1; a++) expect(feed.lostAfter(a)).toBe(evicted > a);
        },
      ),
      { numRuns: 400 },
    );
  });
});

// --- FeedReader: a listener answered by hand ------------------------------------------------

type Heard = number | string;

interface Held {
  readonly what: Heard;
  resolve(): void;
  reject(err: unknown): void;
}

interface HarnessOptions {
  readonly maxInFlight?: number;
  readonly keep?: (e: Msg) => boolean;
  /** Called synchronously inside each delivery, after it is heard. */
  readonly onDeliver?: (e: Msg) => void;
  /** Makes `deliver` throw synchronously for this sequence. */
  readonly throwOn?: number;
}

/** A feed, one reader over it, and a listener whose every answer the test gives by hand. */
function harness(feed: Feed<Msg>, o: HarnessOptions = {}) {
  const heard: Heard[] = [];
  const held: Held[] = [];
  const failures: unknown[] = [];
  let sourceReads = 0;
  let maxSeen = 0;
  const hold = (what: Heard) =>
    new Promise<void>((resolve, reject) => {
      held.push({ what, resolve, reject });
      maxSeen = Math.max(maxSeen, reader.inFlight);
    });
  const reader: FeedReader<Msg> = new FeedReader<Msg>({
    ...(o.maxInFlight === undefined ? {} : { maxInFlight: o.maxInFlight }),
    source: (after, limit) => {
      sourceReads++;
      return feed.read(after, limit, o.keep);
    },
    ...(o.keep === undefined ? {} : { accepts: o.keep }),
    deliver: (e) => {
      if (e.seq === o.throwOn) throw new Error(`listener broke on ${e.seq}`);
      heard.push(e.seq);
      const p = hold(e.seq);
      o.onDeliver?.(e);
      return p;
    },
    unrecoverable: (after, from) => {
      heard.push(`lost ${after}..${from}`);
      return hold(`lost ${after}..${from}`);
    },
    onFailed: (err) => failures.push(err),
  });
  return {
    feed,
    reader,
    heard,
    held,
    failures,
    get sourceReads() {
      return sourceReads;
    },
    get maxInFlightSeen() {
      return maxSeen;
    },
    append(...entries: Msg[]) {
      for (const e of entries) {
        feed.append(e);
        reader.offer(e);
      }
    },
    /** Answers the oldest `n` unanswered deliveries, then lets the reader react. */
    async answer(n = held.length) {
      for (const h of held.splice(0, n)) h.resolve();
      await settle();
    },
    /** Answers everything, again and again, until nothing is unanswered. */
    async answerAll() {
      await settle();
      while (held.length > 0) await this.answer();
    },
  };
}

describe("FeedReader", () => {
  it("refuses a maxInFlight that is not a positive integer", () => {
    for (const maxInFlight of [0, -1, 1.5, Number.NaN]) {
      expectError(
        () => harness(new Feed<Msg>({ window: 4 }), { maxInFlight }),
        ErrorCode.BAD_ARGUMENT,
        "a reader's maxInFlight must be a positive integer",
      );
    }
    expect(harness(new Feed<Msg>({ window: 4 })).reader.maxInFlight).toBe(32);
  });

  it("delivers live entries in order while the listener keeps up, skipping those it does not accept", async () => {
    const h = harness(new Feed<Msg>({ window: 10 }), { maxInFlight: 2, keep: (e) => e.tag === 0 });
    h.reader.start(undefined, 0);
    h.append(msg(1), msg(2, 1), msg(4));
    expect(h.heard).toEqual([1, 4]);
    expect(h.reader.cursor).toBe(4);
    await h.answer();
    // A skipped entry moves the cursor too, even with the listener's places all taken.
    h.append(msg(5), msg(6), msg(7, 1));
    expect(h.heard).toEqual([1, 4, 5, 6]);
    expect(h.reader.inFlight).toBe(2);
    expect(h.reader.cursor).toBe(7);
    await h.answer();
    h.append(msg(8));
    expect(h.heard).toEqual([1, 4, 5, 6, 8]);
    expect(h.sourceReads).toBe(0);
  });

  it("stops taking live entries at maxInFlight and, once answered, catches up from the log, then goes live", async () => {
    const h = harness(new Feed<Msg>({ window: 100 }), { maxInFlight: 2 });
    h.reader.start(undefined, 0);
    h.append(msg(1), msg(2), msg(3), msg(4), msg(5), msg(6));
    expect(h.heard).toEqual([1, 2]);
    expect(h.reader.inFlight).toBe(2);
    expect(h.sourceReads).toBe(0);
    await h.answer(1);
    expect(h.heard).toEqual([1, 2, 3]);
    expect(h.reader.inFlight).toBe(2);
    await h.answerAll();
    expect(h.heard).toEqual([1, 2, 3, 4, 5, 6]);
    expect(h.reader.inFlight).toBe(0);
    const reads = h.sourceReads;
    h.append(msg(7));
    expect(h.heard).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(h.sourceReads).toBe(reads);
    expect(h.maxInFlightSeen).toBe(2);
  });

  it("tells a reader that fell behind past the window what it lost, then the retained entries", async () => {
    const h = harness(new Feed<Msg>({ window: 3 }), { maxInFlight: 1 });
    h.reader.start(undefined, 0);
    h.append(msg(1), msg(2), msg(4), msg(5), msg(7), msg(9));
    expect(h.heard).toEqual([1]);
    await h.answer();
    // 2 and 4 were evicted (the feed holds 5, 7, 9); the notice takes the only place.
    expect(h.heard).toEqual([1, "lost 1..5"]);
    await h.answer();
    expect(h.heard).toEqual([1, "lost 1..5", 5]);
    await h.answerAll();
    expect(h.heard).toEqual([1, "lost 1..5", 5, 7, 9]);
    expect(h.maxInFlightSeen).toBe(1);
  });

  it("counts the loss notice among its maxInFlight places", async () => {
    const feed = new Feed<Msg>({ window: 3 });
    for (let s = 1; s <= 10; s++) feed.append(msg(s));
    const h = harness(feed, { maxInFlight: 3 });
    h.reader.start(2, feed.lastSeq);
    expect(h.heard).toEqual(["lost 2..8", 8, 9]);
    expect(h.reader.inFlight).toBe(3);
    await h.answerAll();
    expect(h.heard).toEqual(["lost 2..8", 8, 9, 10]);
    expect(h.maxInFlightSeen).toBe(3);
  });

  it("starts live from liveFrom, replays after an earlier point, or skips to a later one", async () => {
    const feed = new Feed<Msg>({ window: 10 });
    for (const s of [1, 2, 3, 5]) feed.append(msg(s));
    const live = harness(feed);
    live.reader.start(undefined, feed.lastSeq);
    const zero = harness(feed);
    zero.reader.start(0, feed.lastSeq);
    const replay = harness(feed);
    replay.reader.start(2, feed.lastSeq);
    const ahead = harness(feed);
    ahead.reader.start(7, feed.lastSeq);
    expect([live.heard, zero.heard, replay.heard, ahead.heard]).toEqual([[], [], [3, 5], []]);
    for (const s of [6, 7, 8]) {
      feed.append(msg(s));
      for (const h of [live, zero, replay, ahead]) h.reader.offer(msg(s));
    }
    expect(live.heard).toEqual([6, 7, 8]);
    expect(zero.heard).toEqual([6, 7, 8]);
    expect(replay.heard).toEqual([3, 5, 6, 7, 8]);
    expect(ahead.heard).toEqual([8]);
    expect([live.sourceReads, ahead.sourceReads]).toEqual([0, 0]);
  });

  it("refuses a resume point that is not a non-negative integer, and changes nothing", () => {
    const feed = new Feed<Msg>({ window: 10 });
    feed.append(msg(1));
    const h = harness(feed);
    for (const after of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectError(
        () => h.reader.start(after, feed.lastSeq),
        ErrorCode.BAD_ARGUMENT,
        `a resume point must be a non-negative integer; got ${after}`,
      );
    }
    expect([h.reader.cursor, h.sourceReads, h.heard.length]).toEqual([0, 0, 0]);
  });

  it("reads only accepted entries from the source when behind, with the same filter", async () => {
    const odd = (e: Msg) => e.seq % 2 === 1;
    const h = harness(new Feed<Msg>({ window: 100 }), { maxInFlight: 1, keep: odd });
    h.reader.start(undefined, 0);
    for (let s = 1; s <= 9; s++) h.append(msg(s));
    expect(h.heard).toEqual([1]);
    await h.answerAll();
    expect(h.heard).toEqual([1, 3, 5, 7, 9]);
  });

  it("closes after a rejected delivery: onFailed once, and nothing more delivered", async () => {
    const h = harness(new Feed<Msg>({ window: 100 }), { maxInFlight: 3 });
    h.reader.start(undefined, 0);
    h.append(msg(1), msg(2), msg(3), msg(4), msg(5));
    expect(h.heard).toEqual([1, 2, 3]);
    const [first, second, third] = h.held.splice(0, 3) as [Held, Held, Held];
    const boom = new Error("listener gone");
    first.reject(boom);
    second.resolve();
    await settle();
    expect(h.failures).toEqual([boom]);
    expect(h.reader.closed).toBe(true);
    const reads = h.sourceReads;
    h.append(msg(6));
    third.reject(new Error("again"));
    await settle();
    expect(h.heard).toEqual([1, 2, 3]);
    expect(h.failures).toEqual([boom]);
    expect(h.sourceReads).toBe(reads);
    expect(h.reader.inFlight).toBe(0);
  });

  it("closes likewise when delivering throws synchronously", async () => {
    const h = harness(new Feed<Msg>({ window: 100 }), { maxInFlight: 3, throwOn: 2 });
    h.reader.start(undefined, 0);
    h.append(msg(1), msg(2), msg(3));
    expect(h.heard).toEqual([1]);
    expect(h.failures).toHaveLength(1);
    expect(String(h.failures[0])).toContain("listener broke on 2");
    expect(h.reader.closed).toBe(true);
    expect(h.reader.inFlight).toBe(1);
    await h.answerAll();
    expect(h.reader.inFlight).toBe(0);
    expect(h.heard).toEqual([1]);
  });

  it("delivers nothing more once closed, live or from the source", async () => {
    const h = harness(new Feed<Msg>({ window: 100 }), { maxInFlight: 1 });
    h.reader.start(undefined, 0);
    h.append(msg(1), msg(2));
    h.reader.close();
    await h.answerAll();
    h.append(msg(3));
    expect(h.heard).toEqual([1]);
    expect(h.failures).toEqual([]);
  });

  it("delivers, once, an entry the listener appends while the reader replays", async () => {
    const feed = new Feed<Msg>({ window: 100 });
    for (const s of [1, 2, 3]) feed.append(msg(s));
    let echoed = false;
    const h = harness(feed, {
      maxInFlight: 10,
      onDeliver: () => {
        if (echoed) return;
        echoed = true;
        h.append(msg(feed.lastSeq + 1));
      },
    });
    h.reader.start(1, feed.lastSeq);
    await h.answerAll();
    h.append(msg(feed.lastSeq + 1));
    expect(h.heard).toEqual([2, 3, 4, 5]);
  });

  it("delivers an entry the listener appends during a live delivery after that delivery", async () => {
    const feed = new Feed<Msg>({ window: 100 });
    const h = harness(feed, {
      maxInFlight: 2,
      onDeliver: (e) => {
        if (e.tag === 1) h.append(msg(feed.lastSeq + 1), msg(feed.lastSeq + 2));
      },
    });
    h.reader.start(undefined, 0);
    h.append(msg(1, 1));
    // 2 goes live (second place); 3 finds no place and is read from the log later.
    expect(h.heard).toEqual([1, 2]);
    await h.answerAll();
    expect(h.heard).toEqual([1, 2, 3]);
  });

  it("skips entries a source returns at or before its cursor, and takes the source's upTo", () => {
    const pages: FeedPage<Msg>[] = [{ entries: [msg(3), msg(5)], upTo: 9 }];
    const heard: number[] = [];
    const reader = new FeedReader<Msg>({
      maxInFlight: 3,
      source: () => pages.shift() ?? { entries: [], upTo: 9 },
      deliver: (e) => {
        heard.push(e.seq);
        return Promise.resolve();
      },
      unrecoverable: () => Promise.resolve(),
    });
    reader.start(4, 9);
    expect(heard).toEqual([5]);
    // The source looked up to 9: live entries up to it are not delivered again.
    expect(reader.cursor).toBe(9);
    for (const s of [8, 9, 10]) reader.offer(msg(s));
    expect(heard).toEqual([5, 10]);
  });

  it("stays within maxInFlight when a source returns more than the limit it was given", async () => {
    const feed = new Feed<Msg>({ window: 100 });
    for (let s = 1; s <= 6; s++) feed.append(msg(s));
    const h = harness(feed, { maxInFlight: 2 });
    const sloppy = new FeedReader<Msg>({
      maxInFlight: 2,
      source: (after) => feed.read(after, 100),
      deliver: (e) => {
        h.heard.push(e.seq);
        return new Promise<void>((resolve, reject) => h.held.push({ what: e.seq, resolve, reject }));
      },
      unrecoverable: () => Promise.resolve(),
    });
    sloppy.start(1, feed.lastSeq);
    expect(h.heard).toEqual([2, 3]);
    expect(sloppy.inFlight).toBe(2);
    await h.answer(1);
    expect(h.heard).toEqual([2, 3, 4]);
    expect(sloppy.inFlight).toBe(2);
    await h.answerAll();
    expect(h.heard).toEqual([2, 3, 4, 5, 6]);
  });

  it("treats a source's resumedFrom just after the cursor as no loss", async () => {
    const pages: FeedPage<Msg>[] = [{ entries: [msg(6), msg(7)], upTo: 7, resumedFrom: 6 }];
    const heard: Heard[] = [];
    const reader = new FeedReader<Msg>({
      maxInFlight: 5,
      source: () => pages.shift() ?? { entries: [], upTo: 7 },
      deliver: (e) => {
        heard.push(e.seq);
        return Promise.resolve();
      },
      unrecoverable: (after, from) => {
        heard.push(`lost ${after}..${from}`);
        return Promise.resolve();
      },
    });
    reader.start(5, 7);
    await settle();
    expect(heard).toEqual([6, 7]);
    expect(reader.cursor).toBe(7);
  });
});

// --- FeedReader: the property ---------------------------------------------------------------

type ReaderOp =
  | { t: "append"; gap: number; tag: number }
  | { t: "answer"; pick: number }
  | { t: "answerSome"; n: number }
  | { t: "settle" }
  | { t: "reject"; pick: number };

interface Scenario {
  readonly window: number;
  readonly maxInFlight: number;
  /** undefined: no filter; else the tags the listener accepts. */
  readonly tags: readonly number[] | undefined;
  readonly before: readonly { gap: number; tag: number }[];
  readonly resume: { mode: "live" | "zero" | "back" | "ahead"; by: number };
  /** Entries with tag 0 make the listener append one more, synchronously, this many times. */
  readonly echoes: number;
  readonly ops: readonly ReaderOp[];
}

function scenarioArb(rejects: boolean): fc.Arbitrary<Scenario> {
  const entry = fc.record({ gap: fc.integer({ min: 1, max: 3 }), tag: fc.nat(2) });
  const ops: fc.Arbitrary<ReaderOp>[] = [
    fc.record({ t: fc.constant("append" as const), gap: fc.integer({ min: 1, max: 3 }), tag: fc.nat(2) }),
    fc.record({ t: fc.constant("append" as const), gap: fc.integer({ min: 1, max: 3 }), tag: fc.nat(2) }),
    fc.record({ t: fc.constant("answer" as const), pick: fc.nat(20) }),
    fc.record({ t: fc.constant("answerSome" as const), n: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ t: fc.constant("settle" as const) }),
  ];
  const op = rejects
    ? fc.oneof(...ops.map((arbitrary) => ({ weight: 4, arbitrary })), {
        weight: 1,
        arbitrary: fc.record({ t: fc.constant("reject" as const), pick: fc.nat(20) }),
      })
    : fc.oneof(...ops);
  return fc.record({
    window: fc.integer({ min: 1, max: 8 }),
    maxInFlight: fc.integer({ min: 1, max: 5 }),
    tags: fc.option(fc.subarray([0, 1, 2]), { nil: undefined }),
    before: fc.array(entry, { maxLength: 15 }),
    resume: fc.record({ mode: fc.constantFrom("live", "zero", "back", "back", "ahead"), by: fc.nat(20) }),
    echoes: fc.nat(3),
    ops: fc.array(op, { maxLength: 60 }),
  });
}

type Event =
  | { kind: "entry"; seq: number; entry: Msg }
  | { kind: "lost"; after: number; from: number; reallyEvicted: boolean };

/** `rejects`: the scenario may reject deliveries, and its drain rejects whatever is unanswered. */
async function runScenario(s: Scenario, rejects: boolean): Promise<void> {
  const feed = new Feed<Msg>({ window: s.window });
  const keep = s.tags === undefined ? undefined : (e: Msg) => (s.tags as readonly number[]).includes(e.tag);
  const accepted = (e: Msg) => keep === undefined || keep(e);
  const all: Msg[] = [];
  const events: Event[] = [];
  const held: Held[] = [];
  let started = false;
  let echoes = s.echoes;
  let heardAtFailure: number | undefined;
  let failures = 0;
  let rejected = false;
  let last = 0;

  const append = (gap: number, tag: number) => {
    last += gap;
    const e = msg(last, tag);
    feed.append(e);
    all.push(e);
    if (started) reader.offer(e);
  };
  const checkInFlight = () => expect(reader.inFlight).toBeLessThanOrEqual(s.maxInFlight);
  const hold = (what: Heard) =>
    new Promise<void>((resolve, reject) => {
      held.push({ what, resolve, reject });
      checkInFlight();
    });

  const reader: FeedReader<Msg> = new FeedReader<Msg>({
    maxInFlight: s.maxInFlight,
    source: (after, limit) => feed.read(after, limit, keep),
    ...(keep === undefined ? {} : { accepts: keep }),
    deliver: (e) => {
      events.push({ kind: "entry", seq: e.seq, entry: e });
      const p = hold(e.seq);
      if (e.tag === 0 && echoes > 0) {
        echoes--;
        append(1, echoes % 3);
      }
      return p;
    },
    unrecoverable: (after, from) => {
      // Every entry in (after, from) must already be gone from the feed.
      const reallyEvicted = all.every((e) => e.seq <= after || e.seq >= from || e.seq <= feed.evictedUpTo);
      events.push({ kind: "lost", after, from, reallyEvicted });
      return hold(`lost ${after}..${from}`);
    },
    onFailed: () => {
      failures++;
      heardAtFailure = events.length;
    },
  });

  for (const b of s.before) append(b.gap, b.tag);
  const liveFrom = feed.lastSeq;
  const after =
    s.resume.mode === "live"
      ? undefined
      : s.resume.mode === "zero"
        ? 0
        : s.resume.mode === "back"
          ? Math.max(1, liveFrom - s.resume.by)
          : liveFrom + 1 + s.resume.by;
  const startCursor = after === undefined || after === 0 ? liveFrom : after;
  // From here every append is offered, also those the listener makes during start's replay.
  started = true;
  reader.start(after, liveFrom);
  checkInFlight();

  for (const o of s.ops) {
    if (o.t === "append") append(o.gap, o.tag);
    else if (o.t === "answer") {
      if (held.length > 0) held.splice(o.pick % held.length, 1)[0]?.resolve();
    } else if (o.t === "answerSome") {
      for (const h of held.splice(0, o.n)) h.resolve();
    } else if (o.t === "reject") {
      if (held.length > 0) {
        held.splice(o.pick % held.length, 1)[0]?.reject(new Error("listener gone"));
        rejected = true;
      }
    } else await settle();
    checkInFlight();
  }
  // Drain: let the reader react, answer everything, until it has nothing left to send.
  for (let rounds = 0; ; rounds++) {
    expect(rounds).toBeLessThan(10_000);
    await settle();
    checkInFlight();
    if (held.length === 0) break;
    for (const h of held.splice(0)) {
      if (!rejects) h.resolve();
      else {
        h.reject(new Error("listener gone at the end"));
        rejected = true;
      }
    }
  }
  expect(reader.inFlight).toBe(0);

  // Strictly increasing, each heard entry accepted, each the entry appended, notices in place.
  let cursor = startCursor;
  const bySeq = new Map(all.map((e) => [e.seq, e]));
  for (const ev of events) {
    if (ev.kind === "entry") {
      expect(ev.seq).toBeGreaterThan(cursor);
      expect(ev.entry).toBe(bySeq.get(ev.seq));
      expect(accepted(ev.entry)).toBe(true);
      cursor = ev.seq;
    } else {
      expect(ev.after).toBeGreaterThanOrEqual(cursor);
      expect(ev.from).toBeGreaterThan(ev.after + 1);
      expect(ev.reallyEvicted).toBe(true);
      cursor = ev.from - 1;
    }
  }

  expect(failures > 0).toBe(rejected);
  if (rejected) {
    expect(failures).toBe(1);
    expect(reader.closed).toBe(true);
    expect(events.length).toBe(heardAtFailure);
    return;
  }
  // Exactly the accepted entries after the start point, but for the runs announced as lost.
  const heard = new Set(events.flatMap((ev) => (ev.kind === "entry" ? [ev.seq] : [])));
  const lost = events.flatMap((ev) => (ev.kind === "lost" ? [ev] : []));
  for (const e of all) {
    if (e.seq <= startCursor || !accepted(e)) {
      expect(heard.has(e.seq)).toBe(false);
      continue;
    }
    const announced = lost.some((l) => e.seq > l.after && e.seq < l.from);
    expect(heard.has(e.seq) !== announced).toBe(true);
  }
}

describe("FeedReader property", () => {
  it("hears each accepted entry once, in order, or a loss notice for it; never more than maxInFlight unanswered", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(false), (s) => runScenario(s, false)),
      { numRuns: 400 },
    );
  });

  it("with rejected deliveries among the answers: closes once and hears nothing after", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(true), (s) => runScenario(s, true)),
      { numRuns: 300 },
    );
  });
});
