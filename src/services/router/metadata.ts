/**
 * Per-user metadata (seed 003's `metadata_set/get/list/delete`): small JSON values under string
 * keys, kept in the router's store across logins, written with compare-and-set versions, and
 * watched by the user's other devices.
 *
 * Invariants:
 * - Every method acts on `s.identityId`, the user of the session the call came through; no
 *   method takes a user, so one user's metadata can neither be read, changed nor watched through
 *   another user's session.
 * - A login limited to URIs (an API key with URI permissions) reaches no metadata at all
 *   (PARALLAX_ERR_PERMISSION_DENIED): metadata keys are no URIs its rules could allow, and a key
 *   scoped to a few calls must not read or rewrite what the user keeps there (seed 003: public
 *   keys, preferences). A key without URI limits, like any other login, has the user's metadata.
 * - Keys are 1..255 characters of well-formed Unicode, values JSON text nested at most 32 deep:
 *   anything else is PARALLAX_ERR_BAD_ARGUMENT and changes nothing. A value over `maxValueBytes`
 *   of UTF-8 answers `tooLarge` and a new key beyond `maxKeys` answers `tooMany` (the schema's
 *   typed outcomes), a failed precondition `conflict` with the current entry (version 0: absent).
 * - Versions come from the store (1 for a new key, +1 per write), compared and written in one
 *   transaction: two sessions (or processes) writing against the same version cannot both win.
 * - After a write or delete lands, the watchers of the same user's *other* sessions hear it
 *   (`changed(entry, deleted)`, the deleted entry as it was); the writing session's own watchers
 *   do not (it has the answer), and no other user's ever do. A refused write tells nobody.
 * - Watchers go through one bounded `Notifier` per user: at most `maxInFlight` unanswered calls
 *   each; one whose call fails is dropped; one that falls `maxInFlight` behind misses changes
 *   and, once it has answered, hears `missed(count)` (the client lists again). At most `maxWatchesPerSession` live watches per session (PARALLAX_ERR_QUOTA).
 * - A watch ends when canceled, when its `Watch` is released, when its session closes and at
 *   `close`; its watcher stub is disposed then.
 * - Notifications reach the watchers of this process only; a write made through another process
 *   on the same file is not announced here.
 *
 * Tests: test/services/router/metadata.test.ts
 */
import type { Clock } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import { Notifier } from "../../login/notifier.js";
import {
  MAX_METADATA_KEY_CHARS,
  type MetadataPrecondition,
  type MetadataRecord,
  type RouterStore,
} from "../../store/router-store.js";
import { type MetadataWatcher, Watch } from "../../wire/gen/router.js";
import { readJson } from "./payload.js";
import type { RouterSessionRef } from "./session.js";

export interface MetadataOptions {
  readonly clock: Clock;
  /** Largest value, in bytes of UTF-8; larger answers `tooLarge`. Default 16 KiB. */
  readonly maxValueBytes?: number;
  /** Deepest nesting of a value. Default 32. */
  readonly maxDepth?: number;
  /** Keys one user may hold; a new one beyond answers `tooMany`. Default 256. */
  readonly maxKeys?: number;
  /** Live watches per session. Default 4. */
  readonly maxWatchesPerSession?: number;
  /** Unanswered notifications per watcher. Default 32. */
  readonly maxInFlight?: number;
}

/** A metadata entry as the wire carries it (`MetadataEntry`). */
export interface MetadataEntryView {
  readonly key: string;
  readonly value: string;
  readonly version: bigint;
  readonly updatedAt: bigint;
}

/** The schema's `MetadataOutcome`, one member set. */
export type MetadataOutcomeView =
  | { readonly ok: MetadataEntryView }
  | { readonly conflict: MetadataEntryView }
  | { readonly tooLarge: number }
  | { readonly tooMany: number };

interface Change {
  readonly entry: MetadataEntryView;
  readonly deleted: boolean;
  /** The session that made it: its own watchers are not told. */
  readonly from: RouterSessionRef;
}

interface WatchRecord {
  readonly session: RouterSessionRef;
  readonly identityId: number;
  readonly listener: MetadataWatcher;
  ended: boolean;
}

interface UserWatchers {
  readonly notifier: Notifier<MetadataWatcher, Change>;
  readonly byListener: Map<MetadataWatcher, WatchRecord>;
}

const LONE_SURROGATE = /\p{Cs}/u;

export class Metadata {
  readonly maxValueBytes: number;
  readonly maxDepth: number;
  readonly maxKeys: number;
  readonly maxWatchesPerSession: number;
  readonly maxInFlight: number;
  readonly #store: RouterStore;
  readonly #clock: Clock;
  readonly #users = new Map<number, UserWatchers>();
  readonly #watches = new Map<RouterSessionRef, Set<WatchRecord>>();
  readonly #closed = new WeakSet<RouterSessionRef>();

  constructor(store: RouterStore, options: MetadataOptions) {
    this.#store = store;
    this.#clock = options.clock;
    this.maxValueBytes = positive("maxValueBytes", options.maxValueBytes ?? 16 * 1024);
    this.maxDepth = positive("maxDepth", options.maxDepth ?? 32);
    this.maxKeys = positive("maxKeys", options.maxKeys ?? 256);
    this.maxWatchesPerSession = positive("maxWatchesPerSession", options.maxWatchesPerSession ?? 4);
    this.maxInFlight = positive("maxInFlight", options.maxInFlight ?? 32);
  }

  /** Writes `value` (JSON text) under `key` for the session's user if `precondition` holds. */
  async set(
    s: RouterSessionRef,
    key: string,
    value: string,
    precondition: MetadataPrecondition,
  ): Promise<MetadataOutcomeView> {
    this.#requireOpen(s);
    readKey(key);
    if (typeof value !== "string") throw bad("a metadata value must be JSON text");
    if (Buffer.byteLength(value, "utf8") > this.maxValueBytes) return { tooLarge: this.maxValueBytes };
    readJson(value, "metadata value", { maxBytes: this.maxValueBytes, maxDepth: this.maxDepth });
    if (LONE_SURROGATE.test(value)) throw bad("metadata value must be well-formed Unicode");
    readPrecondition(precondition);
    const result = await this.#store.metadataSet(s.identityId, key, value, precondition, {
      maxKeys: this.maxKeys,
      now: this.#clock.now(),
    });
    switch (result.kind) {
      case "ok": {
        const entry = entryView(result.entry);
        this.#announce(s, { entry, deleted: false, from: s });
        return { ok: entry };
      }
      case "conflict":
        return { conflict: entryView(result.current) };
      case "tooMany":
        return { tooMany: result.max };
    }
  }

  /** The session's user's entry of `key`; version 0 (value "") when there is none. */
  async get(s: RouterSessionRef, key: string): Promise<MetadataEntryView> {
    this.#requireOpen(s);
    readKey(key);
    const stored = await this.#store.metadataGet(s.identityId, key);
    return entryView(stored ?? { key, value: "", version: 0, updatedAt: 0 });
  }

  /** Every entry of the session's user, sorted by key. */
  async list(s: RouterSessionRef): Promise<MetadataEntryView[]> {
    this.#requireOpen(s);
    return (await this.#store.metadataList(s.identityId)).map(entryView);
  }

  /** Deletes the session's user's `key` if it exists and `precondition` holds. */
  async delete(
    s: RouterSessionRef,
    key: string,
    precondition: MetadataPrecondition,
  ): Promise<MetadataOutcomeView> {
    this.#requireOpen(s);
    readKey(key);
    readPrecondition(precondition);
    const result = await this.#store.metadataDelete(s.identityId, key, precondition);
    if (result.kind === "conflict") return { conflict: entryView(result.current) };
    const entry = entryView(result.entry);
    this.#announce(s, { entry, deleted: true, from: s });
    return { ok: entry };
  }

  /**
   * Tells `watcher` (taken over: disposed when the watch ends, or at once if refused) of every
   * change to the session's user's metadata made through the user's other sessions. Answers the
   * `Watch`, a stub the caller owns (hand it on or dispose it; releasing it ends the watch).
   * QUOTA beyond `maxWatchesPerSession`; ALREADY_EXISTS if the same watcher capability watches
   * this user already.
   */
  watch(s: RouterSessionRef, watcher: MetadataWatcher): Watch {
    let user: UserWatchers;
    let record: WatchRecord;
    try {
      this.#requireOpen(s);
      const live = this.#liveWatches(s);
      if (live >= this.maxWatchesPerSession) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `this session holds ${this.maxWatchesPerSession} metadata watches already (at most ${this.maxWatchesPerSession})`,
        );
      }
      user = this.#userOf(s.identityId);
      record = { session: s, identityId: s.identityId, listener: watcher, ended: false };
    } catch (err) {
      watcher.dispose();
      throw err;
    }
    // From here the notifier owns the watcher (and disposes it if it refuses it).
    if (!user.notifier.add(record, watcher)) {
      this.#forgetIfEmpty(s.identityId, user);
      throw new ParallaxError(ErrorCode.ALREADY_EXISTS, "this watcher watches this user's metadata already");
    }
    user.byListener.set(watcher, record);
    let mine = this.#watches.get(s);
    if (mine === undefined) {
      mine = new Set();
      this.#watches.set(s, mine);
    }
    mine.add(record);
    const end = (): void => this.#endWatch(record);
    const impl = { cancel: end, [Symbol.dispose]: end };
    return Watch.server(impl);
  }

  /** The session ended: its watches end. */
  closeSession(s: RouterSessionRef): void {
    this.#closed.add(s);
    for (const w of [...(this.#watches.get(s) ?? [])]) this.#endWatch(w);
    this.#watches.delete(s);
  }

  /** The router is shutting down: every watch ends. */
  close(): void {
    for (const [s, mine] of [...this.#watches]) {
      this.#closed.add(s);
      for (const w of [...mine]) this.#endWatch(w);
    }
    this.#watches.clear();
  }

  /** Live watches over all users (for tests and stats). */
  get watchCount(): number {
    let n = 0;
    for (const u of this.#users.values()) n += u.notifier.size;
    return n;
  }

  #requireOpen(s: RouterSessionRef): void {
    if (!s.open || this.#closed.has(s)) {
      throw new ParallaxError(ErrorCode.FAILED, `session ${s.session} has ended`);
    }
    if (s.keyRules !== undefined) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "this API key is limited to URIs: it grants no access to the user's metadata",
      );
    }
  }

  #announce(s: RouterSessionRef, change: Change): void {
    this.#users.get(s.identityId)?.notifier.notify(change, (owner) => (owner as WatchRecord).session !== s);
  }

  #userOf(identityId: number): UserWatchers {
    let user = this.#users.get(identityId);
    if (user === undefined) {
      const byListener = new Map<MetadataWatcher, WatchRecord>();
      const ended = (l: MetadataWatcher): void => {
        const record = byListener.get(l);
        if (record !== undefined) this.#endWatch(record);
      };
      user = {
        byListener,
        notifier: new Notifier<MetadataWatcher, Change>({
          maxInFlight: this.maxInFlight,
          maxPerOwner: 1,
          deliver: (l, change) => {
            const sent = l.changed({ entry: change.entry, deleted: change.deleted });
            return sent.then(
              () => sent.dispose(),
              (err: unknown) => {
                sent.dispose();
                ended(l);
                throw err;
              },
            );
          },
          // It missed changes: it is told how many, and lists again.
          dropped: (l, { count }) => l.missed({ count }),
        }),
      };
      this.#users.set(identityId, user);
    }
    return user;
  }

  #liveWatches(s: RouterSessionRef): number {
    const mine = this.#watches.get(s);
    if (mine === undefined) return 0;
    for (const w of [...mine]) {
      if (this.#users.get(w.identityId)?.notifier.countOf(w) !== 1) this.#endWatch(w);
    }
    return mine.size;
  }

  #endWatch(w: WatchRecord): void {
    if (w.ended) return;
    w.ended = true;
    this.#watches.get(w.session)?.delete(w);
    const user = this.#users.get(w.identityId);
    if (user === undefined) return;
    user.byListener.delete(w.listener);
    user.notifier.removeOwner(w);
    this.#forgetIfEmpty(w.identityId, user);
  }

  #forgetIfEmpty(identityId: number, user: UserWatchers): void {
    if (user.notifier.size === 0 && this.#users.get(identityId) === user) this.#users.delete(identityId);
  }
}

function entryView(r: MetadataRecord): MetadataEntryView {
  return { key: r.key, value: r.value, version: BigInt(r.version), updatedAt: BigInt(r.updatedAt) };
}

function readKey(key: string): void {
  if (typeof key !== "string") throw bad("a metadata key must be text");
  if (LONE_SURROGATE.test(key)) throw bad("a metadata key must be well-formed Unicode");
  const chars = [...key].length;
  if (chars < 1 || chars > MAX_METADATA_KEY_CHARS) {
    throw bad(`a metadata key is 1..${MAX_METADATA_KEY_CHARS} characters; got ${chars}`);
  }
}

function readPrecondition(p: MetadataPrecondition): void {
  if (typeof p !== "object" || p === null) throw bad("a precondition is missing");
  if (p.kind === "none") return;
  if (p.kind !== "version" || !Number.isSafeInteger(p.version) || p.version < 0) {
    throw bad("a precondition is none or a version (a whole number >= 0)");
  }
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}

function positive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `Metadata ${name} must be a positive integer; got ${n}`);
  }
  return n;
}
