/**
 * Rosters (seed 003's `roster_register` / `roster_unregister` / `roster_query`), plus what Nexus
 * lacks: watchers told of every join, update and leave. A roster is named by a URI; each session
 * has at most one entry per roster, which lives as long as the session.
 *
 * Invariants:
 * - An entry's owner (authid, role, session) is the `RouterSessionRef` it was registered
 *   through, never an argument; only that session can update or remove it (`unregister` acts on
 *   the caller's own entry, there is no way to name another's).
 * - Registering needs `register` on the roster's URI, querying and watching need `subscribe`
 *   (`s.need`, exact pattern): with the default roles, backends register and frontends query.
 * - An entry is visible to a session when its `visibleTo` is empty or lists the session's role;
 *   queries, watch snapshots and every change a watcher hears obey that, entry by entry. An
 *   update that makes an entry visible to a watcher reaches it as `joined`, one that hides it as
 *   `left`, so a watcher's view always equals what a query would answer.
 * - Every input is checked before anything changes: a malformed URI, data that is not JSON or is
 *   over 16 KiB or 32 deep, more than 32 `visibleTo` roles or a malformed role name is
 *   PARALLAX_ERR_BAD_ARGUMENT, a count over its limit (entries per session, entries per user over
 *   all their sessions, entries per roster, watches per session) PARALLAX_ERR_QUOTA; a refused
 *   call changes nothing. The per-user bound is what holds: sessions are cheap (one attachment
 *   each), so a per-session bound alone multiplies with them (64 × 16 KiB per session).
 * - `closeSession` removes every entry of the session (watchers hear `left`) and ends its
 *   watches; the session can add nothing afterwards (PARALLAX_ERR_FAILED). `close` (the router
 *   shutting down) ends every watch and forgets every roster, telling nobody.
 * - Watchers are fed by one bounded `Notifier` per roster: at most `maxInFlight` unanswered
 *   changes per watcher. A watcher whose call fails is dropped; one that falls `maxInFlight`
 *   behind misses changes and, once it has answered, hears `missed(count)` (then it queries again).
 * - A watch ends when canceled, when its `Watch` capability is released, when its watcher fails,
 *   and when its session closes; its watcher stub is disposed then. Empty rosters are forgotten.
 *
 * Tests: test/services/router/rosters.test.ts
 */
import type { Clock } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import { Notifier } from "../../login/notifier.js";
import { readUri } from "../../login/uri-permissions.js";
import { ROLE_NAME } from "../../store/router-store.js";
import { type RosterChange$Shape, type RosterWatcher, Watch } from "../../wire/gen/router.js";
import { type JsonLimits, readJson } from "./payload.js";
import type { RouterSessionRef } from "./session.js";

/** A roster entry as the wire carries it (`RosterEntry`). */
export interface RosterEntryView {
  readonly name: string;
  readonly owner: { readonly authid: string; readonly role: string; readonly session: bigint };
  readonly data: string;
  readonly updatedAt: bigint;
}

export interface RostersOptions {
  readonly clock: Clock;
  /** Entries one session may hold, over all rosters. Default 64. */
  readonly maxEntriesPerSession?: number;
  /** Entries one user may hold over all their sessions and rosters. Default 1024. */
  readonly maxEntriesPerIdentity?: number;
  /** Entries one roster may hold. Default 10 000. */
  readonly maxEntriesPerRoster?: number;
  /** Watches one session may hold, over all rosters. Default 16. */
  readonly maxWatchesPerSession?: number;
  /** Unanswered changes per watcher. Default 32. */
  readonly maxInFlight?: number;
  /** Limits on an entry's data. Default 16 KiB, 32 deep. */
  readonly json?: JsonLimits;
}

/** Roles one entry may name in `visibleTo`. */
export const MAX_VISIBLE_TO = 32;

export const DEFAULT_ROSTER_JSON_LIMITS: JsonLimits = Object.freeze({ maxBytes: 16 * 1024, maxDepth: 32 });

interface Entry {
  readonly session: RouterSessionRef;
  readonly name: string;
  data: string;
  /** undefined: every role. */
  visibleTo: ReadonlySet<string> | undefined;
  updatedAt: number;
}

/** One watch: the owner of one listener in its roster's notifier. */
interface WatchRecord {
  readonly session: RouterSessionRef;
  readonly roster: Roster;
  readonly listener: RosterWatcher;
  ended: boolean;
}

interface Roster {
  readonly name: string;
  readonly entries: Map<RouterSessionRef, Entry>;
  readonly notifier: Notifier<RosterWatcher, RosterChange$Shape>;
  readonly watches: Set<WatchRecord>;
  readonly byListener: Map<RosterWatcher, WatchRecord>;
}

interface SessionState {
  readonly entries: Map<string, Entry>;
  readonly watches: Set<WatchRecord>;
}

export class Rosters {
  readonly maxEntriesPerSession: number;
  readonly maxEntriesPerIdentity: number;
  readonly maxEntriesPerRoster: number;
  readonly maxWatchesPerSession: number;
  readonly maxInFlight: number;
  readonly json: JsonLimits;
  readonly #clock: Clock;
  readonly #rosters = new Map<string, Roster>();
  readonly #sessions = new Map<RouterSessionRef, SessionState>();
  readonly #closed = new WeakSet<RouterSessionRef>();
  /** Entries held per user, over their sessions. */
  readonly #perIdentity = new Map<number, number>();

  constructor(options: RostersOptions) {
    this.#clock = options.clock;
    this.maxEntriesPerSession = positive("maxEntriesPerSession", options.maxEntriesPerSession ?? 64);
    this.maxEntriesPerIdentity = positive("maxEntriesPerIdentity", options.maxEntriesPerIdentity ?? 1024);
    this.maxEntriesPerRoster = positive("maxEntriesPerRoster", options.maxEntriesPerRoster ?? 10_000);
    this.maxWatchesPerSession = positive("maxWatchesPerSession", options.maxWatchesPerSession ?? 16);
    this.maxInFlight = positive("maxInFlight", options.maxInFlight ?? 32);
    this.json = options.json ?? DEFAULT_ROSTER_JSON_LIMITS;
  }

  /**
   * Adds the session's entry to roster `name`, or updates it (data, visibility, time) if it has
   * one: watchers hear `joined` or `updated` (or `joined`/`left` where visibility changed).
   */
  register(s: RouterSessionRef, name: string, data: string, visibleTo: readonly string[]): RosterEntryView {
    this.#requireOpen(s);
    readUri(name, "roster name");
    s.need("register", { uri: name, match: "exact" });
    readJson(data, "roster data", this.json);
    const roles = readVisibleTo(visibleTo);

    const mine = this.#sessions.get(s);
    const existing = mine?.entries.get(name);
    if (existing === undefined) {
      if ((mine?.entries.size ?? 0) >= this.maxEntriesPerSession) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `this session holds ${this.maxEntriesPerSession} roster entries already (at most ${this.maxEntriesPerSession})`,
        );
      }
      const users = this.#perIdentity.get(s.identityId) ?? 0;
      if (users >= this.maxEntriesPerIdentity) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `this user holds ${users} roster entries over their sessions already (at most ${this.maxEntriesPerIdentity})`,
        );
      }
      const held = this.#rosters.get(name)?.entries.size ?? 0;
      if (held >= this.maxEntriesPerRoster) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `roster "${name}" holds ${this.maxEntriesPerRoster} entries already (at most ${this.maxEntriesPerRoster})`,
        );
      }
    }

    const now = this.#clock.now();
    if (existing !== undefined) {
      const before = existing.visibleTo;
      existing.data = data;
      existing.visibleTo = roles;
      existing.updatedAt = now;
      this.#announceUpdate(this.#rosterOf(name), existing, before);
      return view(existing);
    }
    const entry: Entry = { session: s, name, data, visibleTo: roles, updatedAt: now };
    const roster = this.#rosterOf(name);
    roster.entries.set(s, entry);
    this.#stateOf(s).entries.set(name, entry);
    this.#perIdentity.set(s.identityId, (this.#perIdentity.get(s.identityId) ?? 0) + 1);
    this.#announce(roster, { joined: view(entry) }, entry.visibleTo);
    return view(entry);
  }

  /** Removes the session's own entry from roster `name`; false if it had none. Watchers hear `left`. */
  unregister(s: RouterSessionRef, name: string): boolean {
    readUri(name, "roster name");
    const entry = this.#sessions.get(s)?.entries.get(name);
    if (entry === undefined) return false;
    this.#remove(entry);
    return true;
  }

  /** The entries of roster `name` the session's role may see, in the order they joined. */
  query(s: RouterSessionRef, name: string): RosterEntryView[] {
    this.#requireOpen(s);
    readUri(name, "roster name");
    s.need("subscribe", { uri: name, match: "exact" });
    return this.#visible(this.#rosters.get(name), s.role);
  }

  /**
   * `query`, then every change to roster `name` visible to the session's role, told to `watcher`
   * (taken over: disposed when the watch ends, or at once if refused). Answers the snapshot and
   * the `Watch` (a stub the caller owns: hand it on or dispose it; releasing it ends the watch).
   * ALREADY_EXISTS if the same watcher capability watches this roster already.
   */
  watch(
    s: RouterSessionRef,
    name: string,
    watcher: RosterWatcher,
  ): { entries: RosterEntryView[]; watch: Watch } {
    let roster: Roster;
    let record: WatchRecord;
    try {
      this.#requireOpen(s);
      readUri(name, "roster name");
      s.need("subscribe", { uri: name, match: "exact" });
      const live = this.#liveWatches(s);
      if (live >= this.maxWatchesPerSession) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `this session holds ${this.maxWatchesPerSession} roster watches already (at most ${this.maxWatchesPerSession})`,
        );
      }
      roster = this.#rosterOf(name);
      record = { session: s, roster, listener: watcher, ended: false };
    } catch (err) {
      watcher.dispose();
      throw err;
    }
    // From here the notifier owns the watcher (and disposes it if it refuses it).
    if (!roster.notifier.add(record, watcher)) {
      this.#forgetIfEmpty(roster);
      throw new ParallaxError(ErrorCode.ALREADY_EXISTS, `this watcher watches roster "${name}" already`);
    }
    roster.watches.add(record);
    roster.byListener.set(watcher, record);
    this.#stateOf(s).watches.add(record);
    const end = (): void => this.#endWatch(record);
    const impl = { cancel: end, [Symbol.dispose]: end };
    return { entries: this.#visible(roster, s.role), watch: Watch.server(impl) };
  }

  /** The session ended: its entries leave (watchers hear `left`), its watches end. */
  closeSession(s: RouterSessionRef): void {
    this.#closed.add(s);
    const state = this.#sessions.get(s);
    if (state === undefined) return;
    // Its own watches first: a closing session is told nothing more.
    for (const w of [...state.watches]) this.#endWatch(w);
    for (const entry of [...state.entries.values()]) this.#remove(entry);
    this.#sessions.delete(s);
  }

  /** The router is shutting down: every watch ends (its watcher released), every roster goes. */
  close(): void {
    for (const roster of [...this.#rosters.values()]) {
      roster.entries.clear();
      for (const w of [...roster.watches]) this.#endWatch(w);
      this.#rosters.delete(roster.name);
    }
    for (const s of this.#sessions.keys()) this.#closed.add(s);
    this.#sessions.clear();
    this.#perIdentity.clear();
  }

  /** Entries held in all rosters (for tests and stats). */
  get entryCount(): number {
    let n = 0;
    for (const r of this.#rosters.values()) n += r.entries.size;
    return n;
  }

  /** Live watches over all rosters (for tests and stats). */
  get watchCount(): number {
    let n = 0;
    for (const r of this.#rosters.values()) n += r.notifier.size;
    return n;
  }

  /** Rosters held in memory: those with entries or watches (for tests and stats). */
  get rosterCount(): number {
    return this.#rosters.size;
  }

  #requireOpen(s: RouterSessionRef): void {
    if (!s.open || this.#closed.has(s)) {
      throw new ParallaxError(ErrorCode.FAILED, `session ${s.session} has ended`);
    }
  }

  #stateOf(s: RouterSessionRef): SessionState {
    let state = this.#sessions.get(s);
    if (state === undefined) {
      state = { entries: new Map(), watches: new Set() };
      this.#sessions.set(s, state);
    }
    return state;
  }

  #rosterOf(name: string): Roster {
    let roster = this.#rosters.get(name);
    if (roster === undefined) {
      const byListener = new Map<RosterWatcher, WatchRecord>();
      roster = {
        name,
        entries: new Map(),
        watches: new Set(),
        byListener,
        notifier: new Notifier<RosterWatcher, RosterChange$Shape>({
          maxInFlight: this.maxInFlight,
          maxPerOwner: 1,
          deliver: (l, change) => {
            const sent = l.changed({ change });
            return sent.then(
              () => sent.dispose(),
              (err: unknown) => {
                sent.dispose();
                // A failing watcher is dropped at once (the notifier would drop it too).
                const record = byListener.get(l);
                if (record !== undefined) this.#endWatch(record);
                throw err;
              },
            );
          },
          // It missed changes: it is told how many, and queries again.
          dropped: (l, { count }) => l.missed({ count }),
        }),
      };
      this.#rosters.set(name, roster);
    }
    return roster;
  }

  /** Watches of the session still live (a watcher whose call failed was dropped by its notifier). */
  #liveWatches(s: RouterSessionRef): number {
    const state = this.#sessions.get(s);
    if (state === undefined) return 0;
    for (const w of [...state.watches]) {
      if (w.roster.notifier.countOf(w) === 0) this.#endWatch(w);
    }
    return state.watches.size;
  }

  #endWatch(w: WatchRecord): void {
    if (w.ended) return;
    w.ended = true;
    const roster = w.roster;
    roster.byListener.delete(w.listener);
    roster.watches.delete(w);
    roster.notifier.removeOwner(w);
    this.#sessions.get(w.session)?.watches.delete(w);
    this.#forgetIfEmpty(roster);
  }

  #remove(entry: Entry): void {
    const roster = this.#rosters.get(entry.name);
    const state = this.#sessions.get(entry.session);
    if (state?.entries.delete(entry.name) === true) {
      const id = entry.session.identityId;
      const left = (this.#perIdentity.get(id) ?? 1) - 1;
      if (left > 0) this.#perIdentity.set(id, left);
      else this.#perIdentity.delete(id);
    }
    if (roster === undefined) return;
    roster.entries.delete(entry.session);
    this.#announce(roster, { left: view(entry) }, entry.visibleTo);
    this.#forgetIfEmpty(roster);
  }

  /** Tells the roster's watchers that may see an entry with `visibleTo`. */
  #announce(roster: Roster, change: RosterChange$Shape, visibleTo: ReadonlySet<string> | undefined): void {
    roster.notifier.notify(change, (owner) => sees(visibleTo, (owner as WatchRecord).session.role));
  }

  /** An update: `updated` to who saw it and still does, `joined` / `left` where that changed. */
  #announceUpdate(roster: Roster, entry: Entry, before: ReadonlySet<string> | undefined): void {
    const shape = view(entry);
    const after = entry.visibleTo;
    const role = (owner: object) => (owner as WatchRecord).session.role;
    roster.notifier.notify({ updated: shape }, (o) => sees(before, role(o)) && sees(after, role(o)));
    roster.notifier.notify({ joined: shape }, (o) => !sees(before, role(o)) && sees(after, role(o)));
    roster.notifier.notify({ left: shape }, (o) => sees(before, role(o)) && !sees(after, role(o)));
  }

  #visible(roster: Roster | undefined, role: string): RosterEntryView[] {
    if (roster === undefined) return [];
    const out: RosterEntryView[] = [];
    for (const e of roster.entries.values()) if (sees(e.visibleTo, role)) out.push(view(e));
    return out;
  }

  #forgetIfEmpty(roster: Roster): void {
    if (roster.entries.size > 0 || roster.notifier.size > 0) return;
    if (this.#rosters.get(roster.name) === roster) this.#rosters.delete(roster.name);
    for (const w of [...roster.watches]) this.#endWatch(w);
  }
}

function sees(visibleTo: ReadonlySet<string> | undefined, role: string): boolean {
  return visibleTo === undefined || visibleTo.has(role);
}

function view(e: Entry): RosterEntryView {
  return {
    name: e.name,
    owner: { authid: e.session.authid, role: e.session.role, session: BigInt(e.session.session) },
    data: e.data,
    updatedAt: BigInt(e.updatedAt),
  };
}

function readVisibleTo(visibleTo: readonly string[]): ReadonlySet<string> | undefined {
  if (!Array.isArray(visibleTo)) throw bad("visibleTo must be a list of role names");
  if (visibleTo.length > MAX_VISIBLE_TO) {
    throw bad(`visibleTo lists ${visibleTo.length} roles; at most ${MAX_VISIBLE_TO}`);
  }
  for (const role of visibleTo) {
    if (typeof role !== "string" || !ROLE_NAME.test(role)) {
      throw bad(
        `visibleTo: role name ${JSON.stringify(role)} must be 1..64 characters of a-z, 0-9, '_' and '-'`,
      );
    }
  }
  return visibleTo.length === 0 ? undefined : new Set(visibleTo);
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}

function positive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `Rosters ${name} must be a positive integer; got ${n}`);
  }
  return n;
}
