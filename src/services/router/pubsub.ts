/**
 * The router's publish/subscribe (schema/router.capnp: `publish`, `subscribe`, Event,
 * EventHandler, Subscription): topics with bounded logs, exact/prefix/wildcard subscriptions held
 * as capabilities, delivery and resume with no gap and no duplicate through Feed/FeedReader.
 *
 * Invariants:
 * - An event's publisher (authid, role, session) is the `RouterSessionRef` it came through;
 *   nothing in the call can name another. Its sequence is the router's, increasing over all topics.
 * - A publication is appended to its topic's Feed before it is offered to any subscription, so a
 *   reader that is behind finds it in the log (FeedReader's rule).
 * - Who receives an event: every open subscription whose pattern matches the topic, whose session
 *   may still `subscribe` on the concrete topic (checked per event: a more specific rule may deny
 *   one URI under a prefix), and that passes the publication's lists. `excludeMe` (default true)
 *   drops the publisher's own session; `exclude`/`excludeAuthid`/`excludeAuthrole` drop whoever
 *   is in any of them; the eligible lists are intersected as WAMP does: a session must be in
 *   *every* non-empty eligible list (sessions ∩ authids ∩ roles), and exclusion wins over
 *   eligibility. The same filter applies to live events, replayed ones and retained ones.
 * - A subscription delivers, in order: the retained events it asked for (flagged `retained`),
 *   then what it resumes (every accepted event with seq > resumeAfter), then live events; each
 *   event at most once, none it was owed skipped silently. Retained events go out only for topics
 *   whose retained sequence is ≤ resumeAfter (or all of them when resumeAfter is 0): a later one
 *   comes through the replay, as an ordinary event, so nothing is delivered twice.
 * - Loss is reported, never silent: `unrecoverable(after, resumedFrom)` when a matching topic's log
 *   evicted entries after the reader's cursor, or a topic that matched (or, for a subscription
 *   started later, *may* have matched) was forgotten. Forgotten topics' names are not kept, so a
 *   prefix or wildcard subscription resuming before the newest forgotten sequence
 *   (`forgottenUpTo`), and an exact one whose topic was (re)created after it, hear
 *   `unrecoverable` even if nothing they would have matched was lost: conservative by design.
 *   Live subscriptions are told precisely: forgetting topic T marks only the subscriptions
 *   matching T. Events in (after, resumedFrom) are skipped from every topic of the subscription.
 * - Bounded: `topicWindow` events and `maxTopicBytes` per topic (beyond, its oldest events are
 *   evicted); `maxTopics` topics with a log, and at most `maxLogBytes` of payload held over all
 *   logs (retained events included) — beyond either, a topic (never the one just published to) is
 *   forgotten with its retained event: the least recently published topic *of the user whose
 *   topics weigh most* (by count for `maxTopics`, by bytes for `maxLogBytes`). A topic weighs on
 *   the user whose publication made its log. So one publisher filling the shared log with fresh
 *   topics or big payloads forgets its own topics first and never more than a fair share of
 *   anyone else's (the log is shared, not first come first served).
 *   `maxSubscriptionsPerSession` subscriptions per session (QUOTA);
 *   `maxPublishesPerSecond` publications per user over all their sessions (opening sessions buys no
 *   rate), a token bucket on the injected clock with a
 *   one-second burst (QUOTA); at most `maxInFlight` unanswered deliveries per subscription, the
 *   rest read from the log once it answers; a payload is at most `json.maxBytes` (args and kwargs
 *   together) and `json.maxDepth` deep; each publication list at most 1024 entries of at most 255
 *   characters (BAD_ARGUMENT). A refused call changes nothing.
 * - The PubSub owns every handler it is given: one refused is disposed at once, one accepted when
 *   its subscription ends — `unsubscribe`, release of the Subscription capability, a failed
 *   delivery, `closeSession`, `close`. An ended subscription's capability still answers `info`
 *   (the sequence to resume from) and treats `unsubscribe` as done.
 * - `resumeAfter` beyond the router's last sequence is refused (BAD_ARGUMENT): it comes from
 *   another router's life; a router that restarts passes `startSeq` (its earlier high-water mark)
 *   so sequences keep increasing and everything up to it counts as lost, not as absent.
 *
 * Tests: test/services/router/pubsub.test.ts
 */
import type { Clock } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import { Feed, FeedReader, type FeedPage } from "../../login/feed.js";
import {
  matches,
  readPattern,
  readUri,
  type UriMatchName,
  type UriPattern,
} from "../../login/uri-permissions.js";
import { UriMatch } from "../../wire/gen/broker.js";
import { type EventHandler, Subscription, type Subscription$Server } from "../../wire/gen/router.js";
import { DEFAULT_JSON_LIMITS, type JsonLimits, type PayloadText, readPayload } from "./payload.js";
import type { RouterCaller, RouterSessionRef } from "./session.js";

/** Entries in one publication list (exclude, eligible, …). */
export const MAX_PUBLISH_LIST_ENTRIES = 1024;
/** Longest authid or role in a publication list, in characters. */
export const MAX_PUBLISH_LIST_TEXT_CHARS = 255;

export interface PubSubOptions {
  readonly clock: Clock;
  /** Events kept per topic for resume and for handlers that fall behind. Default 1000. */
  readonly topicWindow?: number;
  /** Topics with a log; beyond, the least recently published one is forgotten. Default 10 000. */
  readonly maxTopics?: number;
  /** Payload bytes held over all topic logs; beyond, topics are forgotten as above. Default 64 MiB. */
  readonly maxLogBytes?: number;
  /** Payload bytes one topic's log holds; beyond, its oldest events go. Default maxLogBytes / 16. */
  readonly maxTopicBytes?: number;
  /** Subscriptions one session may hold (QUOTA beyond). Default 64. */
  readonly maxSubscriptionsPerSession?: number;
  /** Unanswered deliveries per subscription before it is fed from the log. Default 32. */
  readonly maxInFlight?: number;
  /** Publications per second per user (over their sessions), one second's worth as a burst (QUOTA beyond). Default 1000. */
  readonly maxPublishesPerSecond?: number;
  /** Payload limits (args and kwargs together). Default 64 KiB, 32 deep. */
  readonly json?: JsonLimits;
  /** The sequence this router starts after (a restart's high-water mark); earlier ones count as lost. Default 0. */
  readonly startSeq?: number;
}

/** Application data as JSON text: `args` an array, `kwargs` an object, "" for empty. */

/** A list as a plain array or as a capnp list (what `PublishOptions.$toObject()` gives). */
export type ListInput<T> = readonly T[] | { toArray(): T[] };

/** The schema's PublishOptions as a plain object (`PublishOptions.$toObject()` fits). */
export interface PublishOptionsInput {
  /** Default true. */
  readonly excludeMe?: boolean;
  readonly exclude?: ListInput<bigint | number>;
  readonly excludeAuthid?: ListInput<string>;
  readonly excludeAuthrole?: ListInput<string>;
  readonly eligible?: ListInput<bigint | number>;
  readonly eligibleAuthid?: ListInput<string>;
  readonly eligibleAuthrole?: ListInput<string>;
  readonly retain?: boolean;
}

export interface SubscribeOptionsInput {
  readonly getRetained?: boolean;
  /** 0: from now on; otherwise replay every matching event with a greater sequence first. */
  readonly resumeAfter?: number;
}

/** Who a publication is for, compiled from its options. */
interface Audience {
  readonly excludeSession: number | undefined;
  readonly exclude: ReadonlySet<bigint> | undefined;
  readonly excludeAuthid: ReadonlySet<string> | undefined;
  readonly excludeAuthrole: ReadonlySet<string> | undefined;
  readonly eligible: ReadonlySet<bigint> | undefined;
  readonly eligibleAuthid: ReadonlySet<string> | undefined;
  readonly eligibleAuthrole: ReadonlySet<string> | undefined;
}

/** One publication as the logs keep it. */
interface Publication {
  readonly seq: number;
  readonly topic: string;
  readonly publisher: RouterCaller;
  readonly args: string;
  readonly kwargs: string;
  readonly at: number;
  readonly audience: Audience;
  /** What it counts against maxLogBytes. */
  readonly bytes: number;
}

/** A topic that has been published to: its log, retained event and subscriptions. */
class TopicLog {
  readonly feed: Feed<Publication>;
  retained: Publication | undefined;
  /** Payload bytes held: the log's entries and the retained event. */
  bytes = 0;
  /** Subscriptions whose pattern matches this topic. */
  readonly subs = new Set<Sub>();

  constructor(
    readonly uri: string,
    window: number,
    /** The router's forgottenUpTo when this log was made: this topic may have been forgotten before. */
    readonly bornAfterForgotten: number,
    /** The identity whose publication made this log: the topic weighs on them. */
    readonly creator: number,
  ) {
    this.feed = new Feed<Publication>({ window });
  }
}

/** One subscription. */
class Sub {
  readonly reader: FeedReader<Publication>;
  /** Topics with a log that this subscription's pattern matches. */
  readonly topics = new Set<TopicLog>();
  /** Events of this subscription's topics up to here may be lost (a matching topic was forgotten). */
  lostUpTo = 0;
  /** The reader has started: live events are offered to it. */
  started = false;
  /** Where the reader will start, while retained events go out first. */
  startAfter = 0;
  ended = false;

  constructor(
    readonly id: number,
    readonly session: RouterSessionRef,
    readonly pattern: UriPattern,
    readonly handler: EventHandler,
    make: (sub: Sub) => FeedReader<Publication>,
  ) {
    this.reader = make(this);
  }

  /** The sequence to resume from: the last one delivered (or skipped as not this subscription's). */
  get lastSeq(): number {
    return this.started ? this.reader.cursor : this.startAfter;
  }
}

/** A token bucket on the injected clock: `rate` per second, one second's worth as a burst. */
class Bucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly rate: number,
    now: number,
  ) {
    this.#tokens = rate;
    this.#at = now;
  }

  /** Whether a token is there now (refilled for the time that passed). */
  ready(now: number): boolean {
    if (now > this.#at) {
      this.#tokens = Math.min(this.rate, this.#tokens + ((now - this.#at) * this.rate) / 1000);
      this.#at = now;
    }
    return this.#tokens >= 1;
  }

  /** Whether it is full again (what a new bucket would be): it may be forgotten. */
  full(now: number): boolean {
    return this.ready(now) && this.#tokens >= this.rate;
  }

  take(): void {
    this.#tokens -= 1;
  }
}

const MATCH_CODE: Record<UriMatchName, UriMatch> = {
  exact: UriMatch.EXACT,
  prefix: UriMatch.PREFIX,
  wildcard: UriMatch.WILDCARD,
};

/** What a publication costs in memory besides its text, roughly. */
const PUBLICATION_OVERHEAD_BYTES = 128;

export class PubSub {
  readonly topicWindow: number;
  readonly maxTopics: number;
  readonly maxLogBytes: number;
  readonly maxTopicBytes: number;
  readonly maxSubscriptionsPerSession: number;
  readonly maxInFlight: number;
  readonly maxPublishesPerSecond: number;
  readonly json: JsonLimits;
  readonly #clock: Clock;
  #seq: number;
  #subId = 0;
  /** Topics with a log, least recently published first. */
  readonly #topics = new Map<string, TopicLog>();
  #logBytes = 0;
  /** The highest sequence of any topic forgotten (or of a router life before this one). */
  #forgottenUpTo: number;
  readonly #exactSubs = new Map<string, Set<Sub>>();
  readonly #patternSubs = new Set<Sub>();
  readonly #bySession = new Map<RouterSessionRef, Set<Sub>>();
  /** Publish rates, per identity (kept past a session's end: reconnecting refills nothing). */
  readonly #buckets = new Map<number, Bucket>();
  /** Per identity: the topics whose logs they made (least recently published first) and their bytes. */
  readonly #byCreator = new Map<number, { bytes: number; readonly topics: Map<string, TopicLog> }>();
  #closed = false;

  constructor(options: PubSubOptions) {
    this.#clock = options.clock;
    this.topicWindow = positive("topicWindow", options.topicWindow ?? 1000);
    this.maxTopics = positive("maxTopics", options.maxTopics ?? 10_000);
    this.maxLogBytes = positive("maxLogBytes", options.maxLogBytes ?? 64 * 1024 * 1024);
    this.maxTopicBytes = positive(
      "maxTopicBytes",
      options.maxTopicBytes ?? Math.max(1, Math.floor(this.maxLogBytes / 16)),
    );
    this.maxSubscriptionsPerSession = positive(
      "maxSubscriptionsPerSession",
      options.maxSubscriptionsPerSession ?? 64,
    );
    this.maxInFlight = positive("maxInFlight", options.maxInFlight ?? 32);
    this.maxPublishesPerSecond = positive("maxPublishesPerSecond", options.maxPublishesPerSecond ?? 1000);
    this.json = options.json ?? DEFAULT_JSON_LIMITS;
    const start = options.startSeq ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `PubSub startSeq must be an integer >= 0; got ${start}`,
      );
    }
    this.#seq = start;
    this.#forgottenUpTo = start;
  }

  /** The sequence of the latest publication. */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Topics with a log. */
  get topicCount(): number {
    return this.#topics.size;
  }

  /** Subscriptions open (of session `s`, or all). */
  subscriptionCount(s?: RouterSessionRef): number {
    if (s !== undefined) return this.#bySession.get(s)?.size ?? 0;
    let n = 0;
    for (const subs of this.#bySession.values()) n += subs.size;
    return n;
  }

  /**
   * Publishes `payload` to `topic` as `from`. Needs `publish` on the topic. Answers the event's
   * sequence.
   */
  publish(
    from: RouterSessionRef,
    topic: string,
    payload: PayloadText,
    options: PublishOptionsInput = {},
  ): number {
    this.#checkOpen(from);
    const uri = readUri(topic, "topic");
    from.need("publish", { uri, match: "exact" });
    const now = this.#clock.now();
    let bucket = this.#buckets.get(from.identityId);
    if (bucket === undefined) {
      if (this.#buckets.size >= 4096) {
        for (const [id, b] of this.#buckets) if (b.full(now)) this.#buckets.delete(id);
      }
      bucket = new Bucket(this.maxPublishesPerSecond, now);
      this.#buckets.set(from.identityId, bucket);
    }
    if (!bucket.ready(now)) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this user publishes more than ${this.maxPublishesPerSecond} events per second (over all sessions)`,
      );
    }
    const { args, kwargs } = readPayload(payload, this.json);
    const audience = readAudience(from, options);
    bucket.take();
    const seq = ++this.#seq;
    const event: Publication = {
      seq,
      topic: uri,
      publisher: Object.freeze({ ...from.caller }),
      args,
      kwargs,
      at: now,
      audience,
      bytes:
        Buffer.byteLength(args, "utf8") +
        Buffer.byteLength(kwargs, "utf8") +
        uri.length +
        audienceBytes(audience) +
        PUBLICATION_OVERHEAD_BYTES,
    };
    const log = this.#logFor(uri, from.identityId);
    if (log.feed.size >= log.feed.window) {
      const oldest = log.feed.read(log.feed.evictedUpTo, 1).entries[0];
      if (oldest !== undefined) this.#account(log, -oldest.bytes);
    }
    log.feed.append(event);
    this.#account(log, event.bytes);
    if (options.retain === true) {
      if (log.retained !== undefined) this.#account(log, -log.retained.bytes);
      log.retained = event;
      this.#account(log, event.bytes);
    }
    // Its own bound first (a reader behind hears the loss, as for the window); never the new one.
    while (log.bytes > this.maxTopicBytes && log.feed.size > 1) {
      const dropped = log.feed.dropOldest();
      if (dropped === undefined) break;
      this.#account(log, -dropped.bytes);
    }
    for (const sub of [...log.subs]) {
      if (sub.started) sub.reader.offer(event);
    }
    while (this.#logBytes > this.maxLogBytes && this.#topics.size > 1) {
      const victim = this.#victim(log, "bytes");
      if (victim === undefined) break;
      this.#forget(victim);
    }
    return seq;
  }

  /**
   * Subscribes `from` to `topic` under `match`, taking over `handler` (disposed on refusal and
   * when the subscription ends). Needs `subscribe` on the pattern. Answers the Subscription
   * capability (the caller owns the returned stub) and the router's last sequence now.
   */
  subscribe(
    from: RouterSessionRef,
    topic: string,
    match: UriMatchName,
    handler: EventHandler,
    options: SubscribeOptionsInput = {},
  ): { subscription: Subscription; lastSeq: number } {
    const after = options.resumeAfter ?? 0;
    let pattern: UriPattern;
    try {
      pattern = this.#checkSubscribe(from, topic, match, after);
    } catch (err) {
      handler.dispose();
      throw err;
    }
    const sub = new Sub(++this.#subId, from, pattern, handler, (s) => this.#reader(s));
    this.#index(sub);
    const liveFrom = this.#seq;
    if (after > 0) {
      const exactLog = pattern.match === "exact" ? this.#topics.get(pattern.uri) : undefined;
      sub.lostUpTo = exactLog !== undefined ? exactLog.bornAfterForgotten : this.#forgottenUpTo;
    }
    const retained: Publication[] = [];
    if (options.getRetained === true) {
      for (const log of sub.topics) {
        const r = log.retained;
        if (r !== undefined && (after === 0 || r.seq <= after) && this.#accepts(sub, r)) retained.push(r);
      }
      retained.sort((a, b) => a.seq - b.seq);
    }
    sub.startAfter = after === 0 ? liveFrom : after;
    if (retained.length === 0) this.#startReader(sub, after);
    else this.#sendRetained(sub, retained);
    return { subscription: this.#capability(sub), lastSeq: liveFrom };
  }

  /** Ends every subscription of session `s` (its handlers disposed); the user's publish rate stays. */
  closeSession(s: RouterSessionRef): void {
    for (const sub of [...(this.#bySession.get(s) ?? [])]) this.#end(sub);
  }

  /** Ends every subscription and forgets every topic; later calls fail. */
  close(): void {
    this.#closed = true;
    for (const subs of [...this.#bySession.values()]) for (const sub of [...subs]) this.#end(sub);
    this.#topics.clear();
    this.#byCreator.clear();
    this.#logBytes = 0;
    this.#buckets.clear();
  }

  #checkSubscribe(from: RouterSessionRef, topic: string, match: UriMatchName, after: number): UriPattern {
    this.#checkOpen(from);
    const pattern = readPattern(topic, match, "topic");
    from.need("subscribe", pattern);
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `resumeAfter must be an integer >= 0; got ${after}`);
    }
    if (after > this.#seq) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `resumeAfter ${after} is beyond this router's last sequence ${this.#seq}; subscribe again from 0`,
      );
    }
    const count = this.#bySession.get(from)?.size ?? 0;
    if (count >= this.maxSubscriptionsPerSession) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this session has ${count} subscriptions already (at most ${this.maxSubscriptionsPerSession})`,
      );
    }
    return pattern;
  }

  #checkOpen(from: RouterSessionRef): void {
    if (this.#closed) throw new ParallaxError(ErrorCode.FAILED, "the router's pub/sub is closed");
    if (!from.open) throw new ParallaxError(ErrorCode.FAILED, `session ${from.session} has ended`);
  }

  #account(log: TopicLog, bytes: number): void {
    log.bytes += bytes;
    this.#logBytes += bytes;
    const c = this.#byCreator.get(log.creator);
    if (c !== undefined) c.bytes += bytes;
  }

  /**
   * The topic to forget under pressure: the least recently published of the identity whose
   * topics weigh most (`by` count or bytes), never `keep`; undefined if only `keep` is left.
   */
  #victim(keep: TopicLog | undefined, by: "topics" | "bytes"): TopicLog | undefined {
    let best: Map<string, TopicLog> | undefined;
    let weight = -1;
    for (const c of this.#byCreator.values()) {
      const w = by === "bytes" ? c.bytes : c.topics.size;
      if (w <= weight) continue;
      if (keep !== undefined && c.topics.size === 1 && c.topics.get(keep.uri) === keep) continue;
      best = c.topics;
      weight = w;
    }
    if (best === undefined) return undefined;
    for (const t of best.values()) if (t !== keep) return t;
    return undefined;
  }

  /** The topic's log, made (weighing on `creator`) if needed and moved to most recently published. */
  #logFor(uri: string, creator: number): TopicLog {
    let log = this.#topics.get(uri);
    if (log !== undefined) {
      this.#topics.delete(uri);
      this.#topics.set(uri, log);
      const mine = this.#byCreator.get(log.creator)?.topics;
      mine?.delete(uri);
      mine?.set(uri, log);
      return log;
    }
    // Forgetting others now cannot have forgotten this topic: the mark is taken before.
    const before = this.#forgottenUpTo;
    while (this.#topics.size >= this.maxTopics) {
      const victim = this.#victim(undefined, "topics");
      if (victim === undefined) break;
      this.#forget(victim);
    }
    log = new TopicLog(uri, this.topicWindow, before, creator);
    this.#topics.set(uri, log);
    let c = this.#byCreator.get(creator);
    if (c === undefined) {
      c = { bytes: 0, topics: new Map() };
      this.#byCreator.set(creator, c);
    }
    c.topics.set(uri, log);
    for (const sub of this.#exactSubs.get(uri) ?? []) link(sub, log);
    for (const sub of this.#patternSubs) if (matches(sub.pattern, uri)) link(sub, log);
    return log;
  }

  /** Drops a topic's log and retained event; subscriptions on it learn what they may have lost. */
  #forget(log: TopicLog): void {
    this.#topics.delete(log.uri);
    this.#logBytes -= log.bytes;
    const c = this.#byCreator.get(log.creator);
    if (c !== undefined && c.topics.get(log.uri) === log) {
      c.topics.delete(log.uri);
      c.bytes -= log.bytes;
      if (c.topics.size === 0) this.#byCreator.delete(log.creator);
    }
    const last = log.feed.lastSeq;
    if (last > this.#forgottenUpTo) this.#forgottenUpTo = last;
    for (const sub of log.subs) {
      sub.topics.delete(log);
      if (last > sub.lostUpTo) sub.lostUpTo = last;
    }
    log.subs.clear();
  }

  #index(sub: Sub): void {
    let mine = this.#bySession.get(sub.session);
    if (mine === undefined) {
      mine = new Set();
      this.#bySession.set(sub.session, mine);
    }
    mine.add(sub);
    if (sub.pattern.match === "exact") {
      let set = this.#exactSubs.get(sub.pattern.uri);
      if (set === undefined) {
        set = new Set();
        this.#exactSubs.set(sub.pattern.uri, set);
      }
      set.add(sub);
      const log = this.#topics.get(sub.pattern.uri);
      if (log !== undefined) link(sub, log);
    } else {
      this.#patternSubs.add(sub);
      for (const log of this.#topics.values()) if (matches(sub.pattern, log.uri)) link(sub, log);
    }
  }

  #end(sub: Sub): void {
    if (sub.ended) return;
    sub.ended = true;
    sub.reader.close();
    const mine = this.#bySession.get(sub.session);
    mine?.delete(sub);
    if (mine?.size === 0) this.#bySession.delete(sub.session);
    if (sub.pattern.match === "exact") {
      const set = this.#exactSubs.get(sub.pattern.uri);
      set?.delete(sub);
      if (set?.size === 0) this.#exactSubs.delete(sub.pattern.uri);
    } else {
      this.#patternSubs.delete(sub);
    }
    for (const log of sub.topics) log.subs.delete(sub);
    sub.topics.clear();
    sub.handler.dispose();
  }

  /** Whether `sub` receives `e`: its session is open, may subscribe on the topic, and is in the audience. */
  #accepts(sub: Sub, e: Publication): boolean {
    const s = sub.session;
    return s.open && inAudience(e.audience, s) && s.may("subscribe", e.topic);
  }

  #reader(sub: Sub): FeedReader<Publication> {
    return new FeedReader<Publication>({
      maxInFlight: this.maxInFlight,
      source: (after, limit) => this.#read(sub, after, limit),
      accepts: (e) => this.#accepts(sub, e),
      deliver: (e) => deliverEvent(sub.handler, e, false),
      unrecoverable: (after, resumedFrom) =>
        sub.handler.unrecoverable({ after: BigInt(after), resumedFrom: BigInt(resumedFrom) }),
      onFailed: () => this.#end(sub),
    });
  }

  /**
   * The subscription's events after `after` from the logs of its topics, merged in sequence
   * order, at most `limit`. Loss in any of them (or a forgotten topic) moves the start past it.
   */
  #read(sub: Sub, after: number, limit: number): FeedPage<Publication> {
    let from = after;
    if (sub.lostUpTo > from) from = sub.lostUpTo;
    for (const log of sub.topics) {
      if (log.feed.evictedUpTo > from) from = log.feed.evictedUpTo;
    }
    const keep = (e: Publication): boolean => this.#accepts(sub, e);
    let entries: Publication[] = [];
    /** Every topic's entries up to here were considered. */
    let upTo = this.#seq;
    for (const log of sub.topics) {
      if (log.feed.lastSeq <= from) continue;
      const page = log.feed.read(from, limit, keep);
      if (page.entries.length >= limit && page.upTo < upTo) upTo = page.upTo;
      entries.push(...page.entries);
    }
    entries = entries.filter((e) => e.seq <= upTo).sort((a, b) => a.seq - b.seq);
    if (entries.length > limit) {
      entries = entries.slice(0, limit);
      upTo = (entries[limit - 1] as Publication).seq;
    }
    if (upTo < from) upTo = from;
    return from > after ? { entries, upTo, resumedFrom: from + 1 } : { entries, upTo };
  }

  #startReader(sub: Sub, after: number): void {
    if (sub.ended) return;
    sub.started = true;
    sub.reader.start(after === 0 ? undefined : after, this.#seq);
  }

  /** Sends the retained events, at most maxInFlight unanswered, then starts the reader. */
  #sendRetained(sub: Sub, queue: Publication[]): void {
    let inFlight = 0;
    let next = 0;
    const pump = (): void => {
      while (!sub.ended && inFlight < this.maxInFlight && next < queue.length) {
        const e = queue[next++] as Publication;
        inFlight++;
        let sent: PromiseLike<unknown>;
        try {
          sent = deliverEvent(sub.handler, e, true);
        } catch {
          this.#end(sub);
          return;
        }
        Promise.resolve(sent).then(
          () => {
            inFlight--;
            if (next < queue.length) pump();
            else if (inFlight === 0) this.#startReader(sub, sub.startAfter);
          },
          () => this.#end(sub),
        );
      }
    };
    pump();
  }

  #capability(sub: Sub): Subscription {
    const impl: Subscription$Server & Disposable = {
      unsubscribe: () => {
        this.#end(sub);
      },
      info: () => ({
        id: BigInt(sub.id),
        topic: sub.pattern.uri,
        match: MATCH_CODE[sub.pattern.match],
        lastSeq: BigInt(sub.lastSeq),
      }),
      [Symbol.dispose]: () => this.#end(sub),
    };
    return Subscription.server(impl);
  }
}

function link(sub: Sub, log: TopicLog): void {
  sub.topics.add(log);
  log.subs.add(sub);
}

function deliverEvent(handler: EventHandler, e: Publication, retained: boolean): PromiseLike<unknown> {
  return handler.event({
    event: {
      topic: e.topic,
      seq: BigInt(e.seq),
      publisher: { authid: e.publisher.authid, role: e.publisher.role, session: BigInt(e.publisher.session) },
      payload: { args: e.args, kwargs: e.kwargs },
      at: BigInt(e.at),
      retained,
    },
  });
}

function inAudience(a: Audience, s: RouterSessionRef): boolean {
  if (a.excludeSession === s.session) return false;
  const id = BigInt(s.session);
  if (a.exclude?.has(id) || a.excludeAuthid?.has(s.authid) || a.excludeAuthrole?.has(s.role)) return false;
  if (a.eligible !== undefined && !a.eligible.has(id)) return false;
  if (a.eligibleAuthid !== undefined && !a.eligibleAuthid.has(s.authid)) return false;
  if (a.eligibleAuthrole !== undefined && !a.eligibleAuthrole.has(s.role)) return false;
  return true;
}

/** What a publication's lists cost in memory, roughly. */
function audienceBytes(a: Audience): number {
  let n = 0;
  for (const set of [a.exclude, a.eligible]) n += (set?.size ?? 0) * 16;
  for (const set of [a.excludeAuthid, a.excludeAuthrole, a.eligibleAuthid, a.eligibleAuthrole]) {
    for (const t of set ?? []) n += 16 + t.length * 2;
  }
  return n;
}

function readAudience(from: RouterSessionRef, o: PublishOptionsInput): Audience {
  return {
    excludeSession: o.excludeMe === false ? undefined : from.session,
    exclude: sessionSet(o.exclude, "exclude"),
    excludeAuthid: textSet(o.excludeAuthid, "excludeAuthid"),
    excludeAuthrole: textSet(o.excludeAuthrole, "excludeAuthrole"),
    eligible: sessionSet(o.eligible, "eligible"),
    eligibleAuthid: textSet(o.eligibleAuthid, "eligibleAuthid"),
    eligibleAuthrole: textSet(o.eligibleAuthrole, "eligibleAuthrole"),
  };
}

/** A list's entries, checked for length; undefined when absent or empty (an empty list sets nothing). */
function listEntries<T>(list: ListInput<T> | undefined, what: string): readonly T[] | undefined {
  if (list === undefined) return undefined;
  const items = Array.isArray(list) ? (list as readonly T[]) : (list as { toArray(): T[] }).toArray();
  if (items.length > MAX_PUBLISH_LIST_ENTRIES) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${what} has ${items.length} entries; at most ${MAX_PUBLISH_LIST_ENTRIES}`,
    );
  }
  return items.length === 0 ? undefined : items;
}

function sessionSet(list: ListInput<bigint | number> | undefined, what: string): Set<bigint> | undefined {
  const items = listEntries(list, what);
  if (items === undefined) return undefined;
  const out = new Set<bigint>();
  for (const v of items) {
    if (typeof v === "bigint") out.add(v);
    else if (typeof v === "number" && Number.isSafeInteger(v)) out.add(BigInt(v));
    else throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} lists session ids, not ${String(v)}`);
  }
  return out;
}

function textSet(list: ListInput<string> | undefined, what: string): Set<string> | undefined {
  const items = listEntries(list, what);
  if (items === undefined) return undefined;
  for (const v of items) {
    if (typeof v !== "string" || v.length > MAX_PUBLISH_LIST_TEXT_CHARS) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `${what} entries are text of at most ${MAX_PUBLISH_LIST_TEXT_CHARS} characters`,
      );
    }
  }
  return new Set(items);
}

function positive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `PubSub ${name} must be a positive integer; got ${n}`);
  }
  return n;
}
