/**
 * The router's client (seed 003's `wamp` object, issue 12): call, register, publish, subscribe,
 * rosters, user metadata, OTPs and API keys, `whoami`, `changeUser`, delayed login and join
 * hooks, over a connection it keeps alive — and, where Nexus and Crossbar leave a gap, gap-free
 * recovery: after a dropped connection it reconnects (resume token), attaches a new router
 * session and restores what it held before it tells anyone it is back.
 *
 * URIs and the prefix: with `prefix` (e.g. "com.izaber.wamp.", which must end with "."), every
 * URI the client is given — procedures, topics, patterns, roster names, API-key permissions — that
 * does not start with the prefix gets it prepended ("auth.whoami" → "com.izaber.wamp.auth.whoami";
 * "com.izaber.wamp.x" stays; "" becomes the namespace itself, "com.izaber.wamp", so a prefix
 * pattern "" means everything under the prefix). URIs the router hands back (an event's topic, an
 * invocation's procedure, roster names) are always full.
 *
 * Payloads are JSON on the wire (Payload: `args` a JSON array, `kwargs` a JSON object); values
 * that JSON cannot carry (bigint, cycles) are refused here with PARALLAX_ERR_BAD_ARGUMENT before
 * anything is sent. A callee's return value `v` becomes the call's `args = [v]` (nothing for
 * undefined); return `new RouterResult(args, kwargs)` to answer both.
 *
 * Recovery — invariants:
 * - After a drop the client resumes with the newest resume token (rotated on every resume); an
 *   API-key login, which gets no token, logs in again with `login`. AUTH_FAILED or REVOKED ends
 *   the attempts (`failed` event); other errors retry, waiting on the injected clock (doubling
 *   from `baseDelayMs` up to `maxDelayMs`).
 * - On every join after the first (reconnect, `changeUser`) each live registration, subscription,
 *   roster entry and watch the client made is made again on the new session before `connected`
 *   is announced and before calls waiting for the connection go on. A single-policy registration
 *   is restored with `forceReregister` (the server may not have noticed yet that the old session
 *   is dead: the zombie the seed warns about); shared policies are not forced (a sibling worker
 *   of the same user must not be punted).
 * - A subscription's handler sees every event at most once and in increasing `seq`: each is
 *   accepted only if its seq exceeds the last one accepted; after a reconnect it re-subscribes
 *   with `resumeAfter` = that seq, so the router replays what was missed (none lost). Loss the
 *   router reports (beyond its retained window) reaches the handle's `onUnrecoverable(after,
 *   resumedFrom)`, in order with the events. A subscription whose router answered sequence 0
 *   (nothing published yet) and which heard nothing before a drop cannot ask for a replay
 *   (`resumeAfter` 0 means "from now on"): the client then reports `onUnrecoverable(0, n + 1)`
 *   for the router's latest sequence `n` when it re-subscribes, if n > 0 — conservatively.
 * - Roster and metadata watches are re-made and their handlers told the difference between the
 *   view before the drop and the router's answer after it (roster: joined/updated/left by owning
 *   session; metadata: changed/deleted by key and version), so a watcher's view stays what a
 *   query would answer. The same resync runs when the router says a watcher fell behind and
 *   changes were dropped (`missed`). Changes older than the view (by `updatedAt`, by version)
 *   are not applied.
 * - Join hooks (`hook("join", fn)`) run after every join, once the client's own handles are
 *   restored. What a hook makes through its `JoinContext` belongs to the hook: on the next join
 *   it is dropped, not restored, and the hook makes it again (the seed's "Hooking join for
 *   Services" pattern). What anyone makes through the client itself is restored by the client.
 * - `changeUser` logs in on the live connection's Root; only once the new login and its router
 *   session exist does it end the old login (`Identity.logout`) and move everything over; a wrong
 *   password throws and leaves the old user in place. Later reconnects resume the new user.
 *
 * Browser-safe: nothing from Node at the top level; the password login (argon2) is imported on
 * first use of `changeUser` unless `passwordLogin` is given.
 *
 * Tests: test/services/router/router-client.test.ts, test/services/router/recovery.test.ts,
 * test/services/router/kill.test.ts
 */
import type { Capability, CapabilityCtor } from "../../caps/index.js";
import { type Clock, systemClock } from "../../clock.js";
import { ErrorCode, ParallaxError, toParallaxError } from "../../errors.js";
import {
  readPattern,
  readUri,
  ruleFromLetters,
  URI_MATCHES,
  type UriMatchName,
  type UriRule,
} from "../../login/uri-permissions.js";
import { type ApiKeyInfo, type Identity, Root, type UriPermission } from "../../wire/gen/broker.js";
import {
  Callee,
  type Event,
  EventHandler,
  type MetadataEntry,
  type MetadataOutcome,
  MetadataOutcome_Which,
  MetadataWatcher,
  type Payload,
  type RegisterOptions$Shape,
  type Registration,
  type RosterChange,
  RosterChange_Which,
  type RosterEntry,
  RosterWatcher,
  type RouterSession,
  type Subscription,
  type Watch,
  type Invocation as WireInvocation,
} from "../../wire/gen/router.js";
import { ROUTER_SESSION } from "./router-keys.js";

/** What the client needs of a connection (an RpcConnection fits). */
export interface RouterConnection {
  bootstrap<C extends Capability>(Ctor: CapabilityCtor<C>): C;
  onClose(listener: (error: ParallaxError) => void): () => void;
  close(reason?: string): void;
}

export type RouterClientEvent =
  | { readonly type: "connected"; readonly resumed: boolean }
  | { readonly type: "disconnected"; readonly error: ParallaxError }
  | {
      readonly type: "retrying";
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: ParallaxError;
    }
  /** Resuming is impossible (credentials changed, session revoked): `changeUser` or a new client. */
  | { readonly type: "failed"; readonly error: ParallaxError }
  | { readonly type: "userChanged"; readonly authid: string }
  /** Something the client held could not be made again on the new session; its handle has ended. */
  | {
      readonly type: "restoreFailed";
      readonly what: "registration" | "subscription" | "roster entry" | "roster watch" | "metadata watch";
      readonly uri: string;
      readonly error: ParallaxError;
    }
  /** A subscription's handler, a watcher or a join hook threw; the client carries on. */
  | { readonly type: "handlerFailed"; readonly uri: string; readonly error: ParallaxError };

export interface RouterClientOptions {
  /** Opens a new connection (e.g. `() => connect(url)`). */
  readonly connect: () => Promise<RouterConnection>;
  /**
   * The first login, given the Root of a fresh connection. Omitted: delayed login (the seed's
   * `AUTORUN = False`) — the client connects and waits for `changeUser`.
   */
  readonly login?: (root: Root) => Promise<Identity>;
  /** Prepended to every URI that does not start with it (see the header). "" or ending with ".". */
  readonly prefix?: string;
  /** Waits between reconnect attempts on this clock. Default: the system clock. */
  readonly clock?: Clock;
  readonly onEvent?: (event: RouterClientEvent) => void;
  /** Names this device on the resume tokens. */
  readonly device?: string;
  /** First reconnect delay in ms, doubled per attempt up to `maxDelayMs`. Default 200. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** The password login `changeUser` uses. Default: SCRAM with argon2id (client-login.ts). */
  readonly passwordLogin?: (root: Root, username: string, password: string) => Promise<Identity>;
}

/** Who made a call, a publication or a roster entry, as the router disclosed it. */
export interface RouterCaller {
  readonly authid: string;
  readonly role: string;
  /** The router's id of the session. */
  readonly session: number;
}

export interface RouterWhoAmI extends RouterCaller {
  readonly authMethod: string;
  /** An API-key login's URI limits; empty otherwise. */
  readonly apiKeyPermissions: readonly UriRule[];
}

export interface CallResult {
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
}

export interface Invocation extends CallResult {
  /** The full URI called. */
  readonly procedure: string;
  readonly caller: RouterCaller;
}

export interface RouterEvent extends CallResult {
  readonly topic: string;
  readonly seq: number;
  readonly publisher: RouterCaller;
  /** ms since the epoch, the router's clock. */
  readonly at: number;
  readonly retained: boolean;
}

/** What a callee returns to answer with both args and kwargs. */
export class RouterResult {
  constructor(
    readonly args: readonly unknown[] = [],
    readonly kwargs: Readonly<Record<string, unknown>> = {},
  ) {}
}

export type InvocationPolicyName = "single" | "roundrobin" | "random" | "first" | "last";
const POLICIES: readonly InvocationPolicyName[] = ["single", "roundrobin", "random", "first", "last"];

export interface RegisterOptions {
  readonly match?: UriMatchName;
  readonly invoke?: InvocationPolicyName;
  readonly forceReregister?: boolean;
}

export interface SubscribeOptions {
  readonly match?: UriMatchName;
  readonly getRetained?: boolean;
  readonly onUnrecoverable?: (after: number, resumedFrom: number) => void;
}

export interface PublishOptions {
  /** Default true: this session does not receive its own publication. */
  readonly excludeMe?: boolean;
  readonly exclude?: readonly number[];
  readonly excludeAuthid?: readonly string[];
  readonly excludeAuthrole?: readonly string[];
  readonly eligible?: readonly number[];
  readonly eligibleAuthid?: readonly string[];
  readonly eligibleAuthrole?: readonly string[];
  readonly retain?: boolean;
}

export interface RosterEntryValue {
  /** The roster's full URI. */
  readonly name: string;
  readonly owner: RouterCaller;
  readonly data: unknown;
  readonly updatedAt: number;
}

export interface RosterChangeValue {
  readonly kind: "joined" | "updated" | "left";
  readonly entry: RosterEntryValue;
}

export interface MetadataValue {
  readonly key: string;
  readonly value: unknown;
  /** 1 for a new key, +1 per write. */
  readonly version: number;
  readonly updatedAt: number;
}

export type MetadataResult =
  | { readonly kind: "ok"; readonly entry: MetadataValue }
  /** The precondition failed: the current entry (undefined: absent). Nothing written. */
  | { readonly kind: "conflict"; readonly current: MetadataValue | undefined }
  | { readonly kind: "tooLarge"; readonly maxBytes: number }
  | { readonly kind: "tooMany"; readonly maxKeys: number };

export interface ApiKeyPermissionInput {
  readonly uri: string;
  readonly match?: UriMatchName;
  /** Nexus' letters: c(all), r(egister), p(ublish), s(ubscribe); or the four booleans. */
  readonly perms?: string;
  readonly call?: boolean;
  readonly register?: boolean;
  readonly publish?: boolean;
  readonly subscribe?: boolean;
}

export interface ApiKeyInput {
  readonly description?: string;
  /** What the key may attach. Default: the router session alone. */
  readonly keyring?: readonly { readonly service: string; readonly perspective: string }[];
  readonly permissions?: readonly ApiKeyPermissionInput[];
  /** ms since the epoch; 0 or omitted: never. */
  readonly expiresAt?: number;
}

export interface ApiKeyValue {
  readonly id: number;
  readonly description: string;
  readonly keyring: readonly { readonly service: string; readonly perspective: string }[];
  readonly permissions: readonly UriRule[];
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** What a join hook is given: the session just joined, and ways to make handles the hook owns. */
export interface JoinContext {
  /** After a reconnect (false on the first join and after `changeUser`). */
  readonly resumed: boolean;
  readonly userChanged: boolean;
  readonly who: RouterWhoAmI;
  register(
    uri: string,
    handler: (invocation: Invocation) => unknown,
    options?: RegisterOptions,
  ): Promise<RouterRegistration>;
  subscribe(
    uri: string,
    handler: (event: RouterEvent) => unknown,
    options?: SubscribeOptions,
  ): Promise<RouterSubscription>;
  rosterRegister(
    name: string,
    data: unknown,
    options?: { visibleTo?: readonly string[] },
  ): Promise<RosterEntryValue>;
}

type Owner = "client" | "hook";

const AUTH_METHODS = ["password", "publicKey", "apiKey", "otp", "resume", "anonymous", "signUp"] as const;

/** A session on a live connection. */
interface Live {
  readonly connection: RouterConnection;
  readonly identity: Identity;
  readonly session: RouterSession;
}

/** What the handles need of their client. */
interface HandleHost {
  emit(event: RouterClientEvent): void;
  forget(handle: Restorable): void;
}

/** A handle the client makes again on a new session. */
interface Restorable {
  readonly owner: Owner;
  readonly what: "registration" | "subscription" | "roster watch" | "metadata watch";
  readonly uri: string;
  readonly active: boolean;
  /** @internal Made anew on `session` (`restoring`: after a reconnect or user change). */
  open(session: RouterSession, restoring: boolean): Promise<void>;
  /** @internal Ends the handle without telling the router (its session is gone). */
  drop(error: ParallaxError): void;
}

export class RouterClient {
  readonly prefix: string;
  readonly #options: RouterClientOptions;
  readonly #clock: Clock;
  #connection: RouterConnection | undefined;
  #live: Live | undefined;
  /** A reconnect or user change in progress: calls wait for it. */
  #transition: Promise<void> | undefined;
  #token: string | undefined;
  /** Logs in again when there is no token to resume with (an API-key login). */
  #relogin: ((root: Root) => Promise<Identity>) | undefined;
  #failure: ParallaxError | undefined;
  #closed = false;
  #started = false;
  readonly #handles = new Set<Restorable>();
  /** This client's roster entries, by full roster URI. */
  readonly #rosterEntries = new Map<string, { data: string; visibleTo: string[]; owner: Owner }>();
  readonly #metadataWatches = new Set<RouterMetadataWatch>();
  readonly #joinHooks = new Set<(join: JoinContext) => unknown>();
  readonly #host: HandleHost;

  constructor(options: RouterClientOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.prefix = checkPrefix(options.prefix ?? "");
    this.#relogin = options.login;
    this.#host = {
      emit: (e) => this.#emit(e),
      forget: (h) => {
        this.#handles.delete(h);
        if (h instanceof RouterMetadataWatch) this.#metadataWatches.delete(h);
      },
    };
  }

  /** Connects and, unless login is delayed, logs in and attaches the router session. */
  async start(): Promise<void> {
    if (this.#started) throw new ParallaxError(ErrorCode.FAILED, "this router client was started already");
    this.#started = true;
    const connection = await this.#options.connect();
    if (this.#closed) {
      connection.close();
      throw closedError();
    }
    const login = this.#options.login;
    if (login === undefined) {
      this.#adopt(connection);
      return;
    }
    try {
      const identity = await this.#loginOn(connection, login);
      this.#token = await issueToken(identity, this.#options.device);
      if (this.#token !== undefined) this.#relogin = undefined;
      const session = await attachSession(identity);
      this.#live = { connection, identity, session };
    } catch (err) {
      connection.close();
      throw err;
    }
    this.#adopt(connection);
    await this.#runHooks({ resumed: false, userChanged: false });
    this.#emit({ type: "connected", resumed: false });
  }

  /** Whether a router session is attached right now. */
  get connected(): boolean {
    return this.#live !== undefined;
  }

  /** Settles once a reconnect or user change in progress is over (at once if none runs). */
  async settled(): Promise<void> {
    await this.#transition?.catch(() => {});
  }

  /** Adds a hook; only "join" exists. It runs after every join from then on. Answers its removal. */
  hook(name: "join", fn: (join: JoinContext) => unknown): () => void {
    if (name !== "join") {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `unknown hook "${String(name)}": the router client has "join"`,
      );
    }
    this.#joinHooks.add(fn);
    return () => this.#joinHooks.delete(fn);
  }

  /** The full URI for `uri` (the prefix rule in the header). */
  uri(uri: string): string {
    if (typeof uri !== "string") throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a URI must be text");
    const p = this.prefix;
    if (p === "" || uri.startsWith(p)) return uri;
    if (uri === "") return p.slice(0, -1);
    return p + uri;
  }

  async whoami(): Promise<RouterWhoAmI> {
    const { session } = await this.#current();
    return readWhoAmI(session);
  }

  /** Calls the procedure at `uri`; PARALLAX_ERR_NOT_FOUND when nobody registered it. */
  async call(
    uri: string,
    args: readonly unknown[] = [],
    kwargs: Readonly<Record<string, unknown>> = {},
    options: { timeoutMs?: number } = {},
  ): Promise<CallResult> {
    const procedure = this.uri(uri);
    const payload = encodePayload(args, kwargs);
    const timeoutMs = options.timeoutMs ?? 0;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 0xffff_ffff) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `timeoutMs must be an integer from 0 to 2^32-1; got ${timeoutMs}`,
      );
    }
    const { session } = await this.#current();
    const res = await session.call({ procedure, payload, timeoutMs });
    return decodePayload(res.result, `the answer of ${procedure}`);
  }

  /** Offers `handler` at `uri` (needs a role that may register there). */
  register(
    uri: string,
    handler: (invocation: Invocation) => unknown,
    options: RegisterOptions = {},
  ): Promise<RouterRegistration> {
    return this.#register("client", uri, handler, options);
  }

  async #register(
    owner: Owner,
    uri: string,
    handler: (invocation: Invocation) => unknown,
    options: RegisterOptions,
  ): Promise<RouterRegistration> {
    if (typeof handler !== "function")
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a registration needs a handler function");
    const match = options.match ?? "exact";
    const procedure = readPattern(this.uri(uri), matchName(match), "procedure").uri;
    const invoke = options.invoke ?? "single";
    if (!POLICIES.includes(invoke)) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown invocation policy "${String(invoke)}"`);
    }
    const handle = new RouterRegistration(
      this.#host,
      owner,
      procedure,
      match,
      invoke,
      options.forceReregister === true,
      handler,
    );
    await this.#open(handle);
    return handle;
  }

  /** Publishes to `uri`; answers the event's sequence. */
  async publish(
    uri: string,
    args: readonly unknown[] = [],
    kwargs: Readonly<Record<string, unknown>> = {},
    options: PublishOptions = {},
  ): Promise<number> {
    const topic = readUri(this.uri(uri), "topic");
    const payload = encodePayload(args, kwargs);
    const { session } = await this.#current();
    const res = await session.publish({
      topic,
      payload,
      options: {
        excludeMe: options.excludeMe ?? true,
        exclude: (options.exclude ?? []).map(sessionId),
        excludeAuthid: [...(options.excludeAuthid ?? [])],
        excludeAuthrole: [...(options.excludeAuthrole ?? [])],
        eligible: (options.eligible ?? []).map(sessionId),
        eligibleAuthid: [...(options.eligibleAuthid ?? [])],
        eligibleAuthrole: [...(options.eligibleAuthrole ?? [])],
        retain: options.retain === true,
      },
    });
    return Number(res.seq);
  }

  /** Subscribes `handler` to `uri`; events arrive in sequence order, none twice, none lost across reconnects. */
  subscribe(
    uri: string,
    handler: (event: RouterEvent) => unknown,
    options: SubscribeOptions = {},
  ): Promise<RouterSubscription> {
    return this.#subscribe("client", uri, handler, options);
  }

  async #subscribe(
    owner: Owner,
    uri: string,
    handler: (event: RouterEvent) => unknown,
    options: SubscribeOptions,
  ): Promise<RouterSubscription> {
    if (typeof handler !== "function")
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a subscription needs a handler function");
    const match = options.match ?? "exact";
    const topic = readPattern(this.uri(uri), matchName(match), "topic").uri;
    const handle = new RouterSubscription(
      this.#host,
      owner,
      topic,
      match,
      options.getRetained === true,
      handler,
    );
    handle.onUnrecoverable = options.onUnrecoverable;
    await this.#open(handle);
    return handle;
  }

  async #open(handle: Restorable): Promise<void> {
    const { session } = await this.#current();
    await handle.open(session, false);
    this.#handles.add(handle);
  }

  /** Adds (or updates) this session's entry in the roster `name`; it lives as long as the client. */
  rosterRegister(
    name: string,
    data: unknown,
    options: { visibleTo?: readonly string[] } = {},
  ): Promise<RosterEntryValue> {
    return this.#rosterRegister("client", name, data, options);
  }

  async #rosterRegister(
    owner: Owner,
    name: string,
    data: unknown,
    options: { visibleTo?: readonly string[] },
  ): Promise<RosterEntryValue> {
    const uri = readUri(this.uri(name), "roster name");
    const text = encodeJson(data, "roster data");
    const visibleTo = [...(options.visibleTo ?? [])];
    const { session } = await this.#current();
    const res = await session.rosterRegister({ name: uri, data: text, visibleTo });
    this.#rosterEntries.set(uri, { data: text, visibleTo, owner });
    return readRosterEntry(res.entry);
  }

  /** Removes this session's entry from the roster `name`; false if it had none. */
  async rosterUnregister(name: string): Promise<boolean> {
    const uri = readUri(this.uri(name), "roster name");
    this.#rosterEntries.delete(uri);
    const { session } = await this.#current();
    return (await session.rosterUnregister({ name: uri })).removed;
  }

  /** The entries of roster `name` this session's role may see. */
  async rosterQuery(name: string): Promise<RosterEntryValue[]> {
    const uri = readUri(this.uri(name), "roster name");
    const { session } = await this.#current();
    return (await session.rosterQuery({ name: uri })).entries.toArray().map(readRosterEntry);
  }

  /** Watches roster `name`: its entries now, then every change (kept across reconnects). */
  async rosterWatch(
    name: string,
    onChange: (change: RosterChangeValue) => unknown,
  ): Promise<RouterRosterWatch> {
    if (typeof onChange !== "function")
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a roster watch needs a function");
    const uri = readUri(this.uri(name), "roster name");
    const handle = new RouterRosterWatch(this.#host, "client", uri, onChange);
    await this.#open(handle);
    return handle;
  }

  /** Writes the user's metadata `key`; `version` makes it a compare-and-set (0: only if absent). */
  async metadataSet(
    key: string,
    value: unknown,
    options: { version?: number } = {},
  ): Promise<MetadataResult> {
    const text = encodeJson(value, "a metadata value");
    const { session } = await this.#current();
    const res = await session.metadataSet({ key, value: text, precondition: precondition(options.version) });
    const out = readOutcome(res.outcome);
    if (out.kind === "ok") for (const w of this.#metadataWatches) w.ownWrite(out.entry, false);
    return out;
  }

  /** The user's metadata `key`; undefined when there is none. */
  async metadataGet(key: string): Promise<MetadataValue | undefined> {
    const { session } = await this.#current();
    return readMetadata((await session.metadataGet({ key })).entry);
  }

  async metadataList(): Promise<MetadataValue[]> {
    const { session } = await this.#current();
    return (await session.metadataList()).entries.toArray().flatMap((e) => readMetadata(e) ?? []);
  }

  async metadataDelete(key: string, options: { version?: number } = {}): Promise<MetadataResult> {
    const { session } = await this.#current();
    const res = await session.metadataDelete({ key, precondition: precondition(options.version) });
    const out = readOutcome(res.outcome);
    if (out.kind === "ok") for (const w of this.#metadataWatches) w.ownWrite(out.entry, true);
    return out;
  }

  /** Watches the user's metadata for changes made through the user's other sessions. */
  async metadataWatch(
    onChange: (entry: MetadataValue, deleted: boolean) => unknown,
  ): Promise<RouterMetadataWatch> {
    if (typeof onChange !== "function")
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a metadata watch needs a function");
    const handle = new RouterMetadataWatch(this.#host, "client", onChange);
    await this.#open(handle);
    this.#metadataWatches.add(handle);
    return handle;
  }

  /** A one-time password for `Root.loginWithOtp` (password logins only; valid 10 minutes). */
  async otpCreate(): Promise<{ otp: string; expiresAt: number; login: string }> {
    const { identity } = await this.#current();
    const res = await identity.createOtp();
    const who = await identity.whoami();
    return { otp: res.otp, expiresAt: Number(res.expiresAt), login: who.info.name };
  }

  /** An API key (password logins only); its secret is shown once, here. */
  async apikeysCreate(input: ApiKeyInput = {}): Promise<ApiKeyValue & { secret: string }> {
    const keyring = (input.keyring ?? [ROUTER_SESSION]).map((k) => ({
      service: k.service,
      perspective: k.perspective,
    }));
    const permissions = (input.permissions ?? []).map((p) => this.#permission(p));
    const expiresAt = input.expiresAt ?? 0;
    if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `expiresAt must be ms since the epoch (or 0); got ${expiresAt}`,
      );
    }
    const { identity } = await this.#current();
    const res = await identity.createApiKey({
      description: input.description ?? "",
      keyring,
      expiresAt: BigInt(expiresAt),
      permissions,
    });
    return { ...readApiKey(res.key), secret: res.secret };
  }

  async apikeysList(): Promise<ApiKeyValue[]> {
    const { identity } = await this.#current();
    return (await identity.listApiKeys()).keys.toArray().map(readApiKey);
  }

  #permission(p: ApiKeyPermissionInput): {
    uri: string;
    match: 0 | 1 | 2;
    call: boolean;
    register: boolean;
    publish: boolean;
    subscribe: boolean;
  } {
    const match = p.match ?? "exact";
    const uri = this.uri(p.uri);
    const rule =
      p.perms !== undefined
        ? ruleFromLetters(uri, matchName(match), p.perms)
        : {
            ...readPattern(uri, matchName(match), "permission URI"),
            call: p.call === true,
            register: p.register === true,
            publish: p.publish === true,
            subscribe: p.subscribe === true,
          };
    return {
      uri: rule.uri,
      match: URI_MATCHES.indexOf(rule.match) as 0 | 1 | 2,
      call: rule.call,
      register: rule.register,
      publish: rule.publish,
      subscribe: rule.subscribe,
    };
  }

  /**
   * Logs in as `username` on the live connection (or a new one, with delayed login). The old
   * login ends only once the new one stands; a wrong password throws and changes nothing.
   */
  async changeUser(username: string, password: string): Promise<void> {
    if (typeof username !== "string" || typeof password !== "string") {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "changeUser takes a user name and a password");
    }
    if (this.#closed) throw closedError();
    const previous = this.#transition;
    const run = (async () => {
      await previous?.catch(() => {});
      await this.#changeUser(username, password);
    })();
    const t = run.catch(() => {});
    this.#transition = t;
    try {
      await run;
    } finally {
      if (this.#transition === t) this.#transition = undefined;
    }
  }

  async #changeUser(username: string, password: string): Promise<void> {
    if (this.#closed) throw closedError();
    let connection = this.#connection;
    const fresh = connection === undefined;
    if (connection === undefined) connection = await this.#options.connect();
    const passwordLogin = this.#options.passwordLogin ?? defaultPasswordLogin;
    let identity: Identity;
    let session: RouterSession;
    let token: string | undefined;
    try {
      identity = await this.#loginOn(connection, (root) => passwordLogin(root, username, password));
      try {
        token = await issueToken(identity, this.#options.device);
        session = await attachSession(identity);
      } catch (err) {
        identity.dispose();
        throw err;
      }
    } catch (err) {
      if (fresh) connection.close();
      throw err;
    }
    const old = this.#live;
    this.#live = undefined;
    if (old !== undefined) {
      try {
        await old.identity.logout();
      } catch {
        // the old login may be gone already (revoked, or its connection dropped)
      }
      old.session.dispose();
      old.identity.dispose();
    }
    this.#token = token;
    this.#relogin = undefined;
    this.#failure = undefined;
    if (fresh) this.#adopt(connection);
    try {
      await this.#restore(session);
    } catch (err) {
      // The connection dropped while restoring: the reconnect (as the new user) takes over.
      session.dispose();
      identity.dispose();
      throw err;
    }
    this.#live = { connection, identity, session };
    const who = await readWhoAmI(session);
    this.#emit({ type: "userChanged", authid: who.authid });
    await this.#runHooks({ resumed: false, userChanged: true }, who);
  }

  async #loginOn(connection: RouterConnection, login: (root: Root) => Promise<Identity>): Promise<Identity> {
    const root = connection.bootstrap(Root);
    try {
      return await login(root);
    } finally {
      root.dispose();
    }
  }

  /** The live session, waiting for a reconnect or user change in progress. */
  async #current(): Promise<Live> {
    for (;;) {
      if (this.#closed) throw closedError();
      if (this.#live !== undefined) return this.#live;
      const t = this.#transition;
      if (t === undefined) break;
      await t;
    }
    if (this.#failure !== undefined) throw this.#failure;
    if (!this.#started) throw new ParallaxError(ErrorCode.FAILED, "call start() first");
    if (this.#connection !== undefined || this.#relogin === undefined) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "not logged in: call changeUser(name, password) first",
      );
    }
    throw new ParallaxError(ErrorCode.DISCONNECTED, "not connected to the router");
  }

  #adopt(connection: RouterConnection): void {
    this.#connection = connection;
    connection.onClose((error) => {
      if (this.#connection !== connection) return;
      this.#connection = undefined;
      const live = this.#live;
      this.#live = undefined;
      live?.session.dispose();
      live?.identity.dispose();
      if (this.#closed) return;
      this.#emit({ type: "disconnected", error });
      // Nothing to resume (delayed login, never logged in): changeUser connects again.
      if (live === undefined && this.#token === undefined) return;
      if (this.#token === undefined && this.#relogin === undefined) return;
      const previous = this.#transition;
      const t: Promise<void> = (async () => {
        await previous?.catch(() => {});
        await this.#reconnect();
      })().finally(() => {
        if (this.#transition === t) this.#transition = undefined;
      });
      this.#transition = t;
    });
  }

  async #reconnect(): Promise<void> {
    const base = this.#options.baseDelayMs ?? 200;
    const max = this.#options.maxDelayMs ?? 30_000;
    for (let attempt = 1; !this.#closed; attempt++) {
      if (this.#connection !== undefined) return; // a user change connected meanwhile
      let connection: RouterConnection | undefined;
      try {
        connection = await this.#options.connect();
        const identity = await this.#loginOn(connection, async (root) => {
          if (this.#token !== undefined) {
            const resumed = await root.resume({ token: this.#token });
            // Rotated: the one just presented is spent.
            this.#token = resumed.token;
            return resumed.identity;
          }
          const relogin = this.#relogin;
          if (relogin === undefined)
            throw new ParallaxError(ErrorCode.AUTH_FAILED, "nothing to log in again with");
          return relogin(root);
        });
        let session: RouterSession;
        try {
          session = await attachSession(identity);
          await this.#restore(session);
        } catch (err) {
          identity.dispose();
          throw err;
        }
        if (this.#closed) {
          connection.close();
          return;
        }
        this.#live = { connection, identity, session };
        this.#adopt(connection);
        await this.#runHooks({ resumed: true, userChanged: false });
        this.#emit({ type: "connected", resumed: true });
        return;
      } catch (err) {
        const error = toParallaxError(err);
        connection?.close();
        if (error.code === ErrorCode.AUTH_FAILED || error.code === ErrorCode.REVOKED) {
          this.#failure = new ParallaxError(
            error.code,
            `cannot resume the router session: ${error.message}. The credentials changed or the session was revoked; log in again`,
          );
          this.#token = undefined;
          this.#relogin = undefined;
          this.#emit({ type: "failed", error: this.#failure });
          return;
        }
        const delayMs = Math.min(max, base * 2 ** (attempt - 1));
        this.#emit({ type: "retrying", attempt, delayMs, error });
        await new Promise<void>((r) => this.#clock.setTimer(delayMs, r));
      }
    }
  }

  /**
   * Makes every client-owned handle again on `session` and drops the hooks' (they make theirs
   * again). A drop of the new connection meanwhile fails the whole restore (the reconnect tries
   * again); any other failure ends that handle alone, with a `restoreFailed` event.
   */
  async #restore(session: RouterSession): Promise<void> {
    const handles = [...this.#handles];
    for (const h of handles) {
      if (h.owner === "hook") {
        h.drop(
          new ParallaxError(
            ErrorCode.CANCELED,
            `${h.what} ${h.uri} was made by a join hook, which makes it again`,
          ),
        );
        this.#host.forget(h);
      }
    }
    for (const [uri, e] of [...this.#rosterEntries]) if (e.owner === "hook") this.#rosterEntries.delete(uri);
    const jobs: Array<Promise<void>> = [];
    for (const h of handles) {
      if (h.owner !== "client" || !h.active) continue;
      jobs.push(
        h.open(session, true).catch((err) => {
          const error = toParallaxError(err);
          if (error.kind === "disconnected") throw error;
          h.drop(error);
          this.#host.forget(h);
          this.#emit({ type: "restoreFailed", what: h.what, uri: h.uri, error });
        }),
      );
    }
    for (const [uri, e] of [...this.#rosterEntries]) {
      jobs.push(
        Promise.resolve(session.rosterRegister({ name: uri, data: e.data, visibleTo: e.visibleTo })).then(
          () => {},
          (err) => {
            const error = toParallaxError(err);
            if (error.kind === "disconnected") throw error;
            this.#rosterEntries.delete(uri);
            this.#emit({ type: "restoreFailed", what: "roster entry", uri, error });
          },
        ),
      );
    }
    const results = await Promise.allSettled(jobs);
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }

  async #runHooks(join: { resumed: boolean; userChanged: boolean }, who?: RouterWhoAmI): Promise<void> {
    if (this.#joinHooks.size === 0) return;
    const live = this.#live;
    if (live === undefined) return;
    let me: RouterWhoAmI;
    try {
      me = who ?? (await readWhoAmI(live.session));
    } catch (err) {
      this.#emit({ type: "handlerFailed", uri: "join", error: toParallaxError(err) });
      return;
    }
    const context: JoinContext = {
      ...join,
      who: me,
      // After a reconnect the hook's registration may still have a zombie on the router (see
      // the header): a single-policy one made again replaces it, as the client's own restores do.
      register: (uri, handler, options = {}) =>
        this.#register(
          "hook",
          uri,
          handler,
          join.resumed && (options.invoke ?? "single") === "single"
            ? { ...options, forceReregister: true }
            : options,
        ),
      subscribe: (uri, handler, options = {}) => this.#subscribe("hook", uri, handler, options),
      rosterRegister: (name, data, options = {}) => this.#rosterRegister("hook", name, data, options),
    };
    for (const fn of [...this.#joinHooks]) {
      try {
        await fn(context);
      } catch (err) {
        this.#emit({ type: "handlerFailed", uri: "join", error: toParallaxError(err) });
      }
    }
  }

  #emit(event: RouterClientEvent): void {
    try {
      this.#options.onEvent?.(event);
    } catch {
      // a listener's failure is not the client's
    }
  }

  /** Stops reconnecting, ends every handle and closes the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError();
    for (const h of this.#handles) h.drop(error);
    this.#handles.clear();
    this.#metadataWatches.clear();
    this.#rosterEntries.clear();
    const live = this.#live;
    this.#live = undefined;
    live?.session.dispose();
    live?.identity.dispose();
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.close();
  }
}

/** A registration: calls to its URI reach the handler until `unregister()` (kept across reconnects). */
export class RouterRegistration implements Restorable {
  readonly what = "registration";
  #stub: Registration | undefined;
  #ended: ParallaxError | undefined;

  constructor(
    readonly host: HandleHost,
    readonly owner: Owner,
    /** The full URI (or pattern) registered. */
    readonly procedure: string,
    readonly match: UriMatchName,
    readonly invoke: InvocationPolicyName,
    readonly forceReregister: boolean,
    readonly handler: (invocation: Invocation) => unknown,
  ) {}

  get uri(): string {
    return this.procedure;
  }

  get active(): boolean {
    return this.#ended === undefined;
  }

  /** Why it ended (unregistered, not restorable, client closed); undefined while active. */
  get error(): ParallaxError | undefined {
    return this.#ended;
  }

  async unregister(): Promise<void> {
    if (this.#ended !== undefined) return;
    this.#ended = new ParallaxError(ErrorCode.CANCELED, `${this.procedure} was unregistered`);
    this.host.forget(this);
    const stub = this.#stub;
    this.#stub = undefined;
    if (stub === undefined) return;
    try {
      await stub.unregister();
    } catch (err) {
      // Its session is gone: so is the registration.
      if (toParallaxError(err).kind !== "disconnected") throw err;
    } finally {
      stub.dispose();
    }
  }

  /** @internal */
  async open(session: RouterSession, restoring: boolean): Promise<void> {
    const callee = Callee.server({ invoke: (p) => this.#invoked(p.invocation) });
    // A restore replaces the zombie of this very registration (single policy: see the header).
    const force = this.forceReregister || (restoring && this.invoke === "single");
    const options: RegisterOptions$Shape = {
      match: URI_MATCHES.indexOf(this.match) as 0 | 1 | 2,
      invoke: POLICIES.indexOf(this.invoke) as 0 | 1 | 2 | 3 | 4,
      forceReregister: force,
    };
    const call = session.register({ procedure: this.procedure, callee, options });
    try {
      const stub = (await call).registration;
      this.#stub?.dispose();
      this.#stub = stub;
      if (this.#ended !== undefined) {
        // unregistered while this was on its way
        this.#stub = undefined;
        await stub.unregister().catch(() => {});
        stub.dispose();
      }
    } finally {
      callee.dispose();
      call.dispose();
    }
  }

  async #invoked(invocation: WireInvocation) {
    const procedure = invocation.procedure;
    const c = invocation.caller;
    const caller: RouterCaller = { authid: c.authid, role: c.role, session: Number(c.session) };
    const { args, kwargs } = decodePayload(invocation.payload, `the invocation of ${procedure}`);
    const value = await this.handler({ procedure, caller, args, kwargs });
    const result =
      value instanceof RouterResult
        ? encodePayload(value.args, value.kwargs)
        : encodePayload(value === undefined ? [] : [value], {});
    return { result };
  }

  /** @internal */
  drop(error: ParallaxError): void {
    this.#ended ??= error;
    this.#stub?.dispose();
    this.#stub = undefined;
  }
}

/** A subscription: events on its topic reach the handler in order, none twice (kept across reconnects). */
export class RouterSubscription implements Restorable {
  readonly what = "subscription";
  /** Told when the router could not replay everything after a reconnect: events in (after, resumedFrom) may be lost. */
  onUnrecoverable: ((after: number, resumedFrom: number) => void) | undefined;
  #stub: Subscription | undefined;
  #ended: ParallaxError | undefined;
  #lastSeq = 0;
  /** The newest subscribe made; events from older ones are ignored once this one delivered. */
  #made = 0;
  #delivering = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(
    readonly host: HandleHost,
    readonly owner: Owner,
    /** The full URI (or pattern) subscribed to. */
    readonly topic: string,
    readonly match: UriMatchName,
    readonly getRetained: boolean,
    readonly handler: (event: RouterEvent) => unknown,
  ) {}

  get uri(): string {
    return this.topic;
  }

  /** The sequence of the last event accepted (what a re-subscribe resumes after). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get active(): boolean {
    return this.#ended === undefined;
  }

  get error(): ParallaxError | undefined {
    return this.#ended;
  }

  async unsubscribe(): Promise<void> {
    if (this.#ended !== undefined) return;
    this.#ended = new ParallaxError(ErrorCode.CANCELED, `${this.topic} was unsubscribed`);
    this.host.forget(this);
    const stub = this.#stub;
    this.#stub = undefined;
    if (stub === undefined) return;
    try {
      await stub.unsubscribe();
    } catch (err) {
      if (toParallaxError(err).kind !== "disconnected") throw err;
    } finally {
      stub.dispose();
    }
  }

  /** @internal */
  async open(session: RouterSession, restoring: boolean): Promise<void> {
    const resumeAfter = restoring ? this.#lastSeq : 0;
    try {
      await this.#subscribeOn(session, restoring, resumeAfter);
    } catch (err) {
      const error = toParallaxError(err);
      // A router that restarted forgot our sequences: start again from now, and say what may be lost.
      if (
        !restoring ||
        resumeAfter === 0 ||
        error.code !== ErrorCode.BAD_ARGUMENT ||
        !/resumeAfter/.test(error.message)
      ) {
        throw err;
      }
      // Its sequences start again: everything it sends from now on is new to us.
      this.#lastSeq = 0;
      const live = await this.#subscribeOn(session, true, 0, true);
      this.#notice(resumeAfter, live + 1);
    }
  }

  /** Answers the router's latest sequence. `reset`: the router's sequences started again. */
  async #subscribeOn(
    session: RouterSession,
    restoring: boolean,
    resumeAfter: number,
    reset = false,
  ): Promise<number> {
    const made = ++this.#made;
    const handler = EventHandler.server({
      event: (p) => this.#event(made, p.event),
      unrecoverable: (p) => {
        if (made < this.#delivering) return;
        const after = Number(p.after);
        const resumedFrom = Number(p.resumedFrom);
        if (resumedFrom - 1 > this.#lastSeq) this.#lastSeq = resumedFrom - 1;
        return this.#notice(after, resumedFrom);
      },
    });
    const call = session.subscribe({
      topic: this.topic,
      handler,
      options: {
        match: URI_MATCHES.indexOf(this.match) as 0 | 1 | 2,
        // Retained events were delivered on the first subscribe; the replay covers the rest.
        getRetained: !restoring && this.getRetained,
        resumeAfter: BigInt(resumeAfter),
      },
    });
    try {
      const res = await call;
      const stub = res.subscription;
      const live = Number(res.lastSeq);
      // From now on (a first subscribe, or nothing to resume after): later events are the new
      // ones. A resume must not move it: the replay of (resumeAfter, live] may still be on its way.
      if (resumeAfter === 0 && live > this.#lastSeq) this.#lastSeq = live;
      if (reset) this.#delivering = made;
      else if (restoring && resumeAfter === 0 && live > 0) {
        // Nothing to resume after (the router had published nothing when we first subscribed).
        void this.#notice(0, live + 1);
      }
      this.#stub?.dispose();
      this.#stub = stub;
      if (this.#ended !== undefined) {
        this.#stub = undefined;
        await stub.unsubscribe().catch(() => {});
        stub.dispose();
      }
      return live;
    } finally {
      handler.dispose();
      call.dispose();
    }
  }

  #event(made: number, e: Event): Promise<void> | undefined {
    if (this.#ended !== undefined || made < this.#delivering) return undefined;
    const retained = e.retained;
    const seq = Number(e.seq);
    if (!retained && seq <= this.#lastSeq) return undefined;
    this.#delivering = made;
    if (!retained) this.#lastSeq = seq;
    const p = e.publisher;
    const { args, kwargs } = decodePayload(e.payload, `an event of ${e.topic}`);
    const event: RouterEvent = {
      topic: e.topic,
      seq,
      publisher: { authid: p.authid, role: p.role, session: Number(p.session) },
      args,
      kwargs,
      at: Number(e.at),
      retained,
    };
    return this.#enqueue(() => this.handler(event));
  }

  #notice(after: number, resumedFrom: number): Promise<void> {
    return this.#enqueue(() => this.onUnrecoverable?.(after, resumedFrom));
  }

  /** Runs `fn` after everything delivered before it; a throw is reported, never sent back. */
  #enqueue(fn: () => unknown): Promise<void> {
    const run = this.#chain.then(fn).then(
      () => {},
      (err) => this.host.emit({ type: "handlerFailed", uri: this.topic, error: toParallaxError(err) }),
    );
    this.#chain = run;
    return run;
  }

  /** @internal */
  drop(error: ParallaxError): void {
    this.#ended ??= error;
    this.#stub?.dispose();
    this.#stub = undefined;
  }
}

/**
 * What both watches share: a view (by key) kept equal to what the router would answer, changes
 * told in order, and a resync — the router's answer diffed against the view — after a reconnect
 * and after the router said changes were dropped (`missed`).
 */
abstract class KeptView<K, V> {
  #stub: Watch | undefined;
  #ended: ParallaxError | undefined;
  readonly #view = new Map<K, V>();
  /** The newest watch made; changes from older ones are ignored. */
  #made = 0;
  /** Changes of the newest watch that arrived before its snapshot. */
  #early: Array<{ value: V; gone: boolean }> | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(
    readonly host: HandleHost,
    readonly owner: Owner,
  ) {}

  abstract readonly uri: string;
  protected abstract keyOf(value: V): K;
  /** Whether `next` says nothing `current` does not (the same, or older). */
  protected abstract stale(current: V, next: V): boolean;
  protected abstract tell(value: V, gone: boolean, existed: boolean): unknown;
  /** Starts a watch on `session` whose watcher calls `changed`/`missed`; answers it and the current values. */
  protected abstract watchOn(
    session: RouterSession,
    changed: (value: V, gone: boolean) => Promise<void> | undefined,
    missed: () => Promise<void> | undefined,
  ): Promise<{ watch: Watch; now: V[] }>;
  /** The router's current values. */
  protected abstract query(session: RouterSession): Promise<V[]>;

  get active(): boolean {
    return this.#ended === undefined;
  }

  protected get values(): V[] {
    return [...this.#view.values()];
  }

  async cancel(): Promise<void> {
    if (this.#ended !== undefined) return;
    this.#ended = new ParallaxError(ErrorCode.CANCELED, `the watch of ${this.uri} was canceled`);
    this.host.forget(this as unknown as Restorable);
    const stub = this.#stub;
    this.#stub = undefined;
    if (stub === undefined) return;
    try {
      await stub.cancel();
    } catch (err) {
      if (toParallaxError(err).kind !== "disconnected") throw err;
    } finally {
      stub.dispose();
    }
  }

  /** @internal A change this client made itself, which the router does not echo to its own session. */
  protected note(value: V, gone: boolean): void {
    if (gone) this.#view.delete(this.keyOf(value));
    else this.#view.set(this.keyOf(value), value);
  }

  /** @internal */
  async open(session: RouterSession, restoring: boolean): Promise<void> {
    const made = ++this.#made;
    const early: Array<{ value: V; gone: boolean }> = [];
    this.#early = early;
    const live = (): boolean => made === this.#made && this.#ended === undefined;
    const { watch, now } = await this.watchOn(
      session,
      (value, gone) => {
        if (!live()) return undefined;
        if (this.#early === early) {
          early.push({ value, gone });
          return undefined;
        }
        return this.#apply(value, gone);
      },
      () => (live() ? this.#resync(session, made) : undefined),
    );
    this.#stub?.dispose();
    this.#stub = watch;
    if (this.#early === early) this.#early = undefined;
    if (restoring) this.#diff(now);
    else for (const v of now) this.#view.set(this.keyOf(v), v);
    for (const c of early) void this.#apply(c.value, c.gone);
    if (this.#ended !== undefined) {
      this.#stub = undefined;
      await watch.cancel().catch(() => {});
      watch.dispose();
    }
  }

  #diff(now: readonly V[]): void {
    const fresh = new Set(now.map((v) => this.keyOf(v)));
    for (const [k, old] of [...this.#view]) if (!fresh.has(k)) void this.#apply(old, true);
    for (const v of now) void this.#apply(v, false);
  }

  async #resync(session: RouterSession, made: number): Promise<void> {
    try {
      const now = await this.query(session);
      if (this.#ended === undefined && made === this.#made) this.#diff(now);
    } catch (err) {
      this.host.emit({ type: "handlerFailed", uri: this.uri, error: toParallaxError(err) });
    }
  }

  /** Applies a change to the view and tells the handler, unless the view has it (or newer) already. */
  #apply(value: V, gone: boolean): Promise<void> {
    const key = this.keyOf(value);
    const old = this.#view.get(key);
    if (gone) {
      if (old === undefined) return Promise.resolve();
      this.#view.delete(key);
    } else {
      if (old !== undefined && this.stale(old, value)) return Promise.resolve();
      this.#view.set(key, value);
    }
    const run = this.#chain
      .then(() => this.tell(value, gone, old !== undefined))
      .then(
        () => {},
        (err) => this.host.emit({ type: "handlerFailed", uri: this.uri, error: toParallaxError(err) }),
      );
    this.#chain = run;
    return run;
  }

  /** @internal */
  drop(error: ParallaxError): void {
    this.#ended ??= error;
    this.#stub?.dispose();
    this.#stub = undefined;
  }
}

/** A roster watch: the roster's entries, kept current across reconnects. */
export class RouterRosterWatch extends KeptView<number, RosterEntryValue> implements Restorable {
  readonly what = "roster watch";

  constructor(
    host: HandleHost,
    owner: Owner,
    readonly name: string,
    readonly onChange: (change: RosterChangeValue) => unknown,
  ) {
    super(host, owner);
  }

  get uri(): string {
    return this.name;
  }

  /** The entries as the watch sees them now. */
  get entries(): RosterEntryValue[] {
    return this.values;
  }

  protected keyOf(e: RosterEntryValue): number {
    return e.owner.session;
  }

  protected stale(current: RosterEntryValue, next: RosterEntryValue): boolean {
    return sameEntry(current, next) || current.updatedAt > next.updatedAt;
  }

  protected tell(entry: RosterEntryValue, gone: boolean, existed: boolean): unknown {
    return this.onChange({ kind: gone ? "left" : existed ? "updated" : "joined", entry });
  }

  protected async watchOn(
    session: RouterSession,
    changed: (e: RosterEntryValue, gone: boolean) => Promise<void> | undefined,
    missed: () => Promise<void> | undefined,
  ): Promise<{ watch: Watch; now: RosterEntryValue[] }> {
    const watcher = RosterWatcher.server({
      changed: (p) => {
        const c = readRosterChange(p.change);
        return changed(c.entry, c.kind === "left");
      },
      // It fell behind and changes were dropped: the view is brought back to what a query answers.
      missed: () => missed(),
    });
    const call = session.rosterWatch({ name: this.name, watcher });
    try {
      const res = await call;
      return { watch: res.watch, now: res.entries.toArray().map(readRosterEntry) };
    } finally {
      watcher.dispose();
      call.dispose();
    }
  }

  protected async query(session: RouterSession): Promise<RosterEntryValue[]> {
    return (await session.rosterQuery({ name: this.name })).entries.toArray().map(readRosterEntry);
  }
}

/** A watch of the user's metadata, kept current across reconnects. */
export class RouterMetadataWatch extends KeptView<string, MetadataValue> implements Restorable {
  readonly what = "metadata watch";
  readonly uri = "metadata";

  constructor(
    host: HandleHost,
    owner: Owner,
    readonly onChange: (entry: MetadataValue, deleted: boolean) => unknown,
  ) {
    super(host, owner);
  }

  /** @internal A write this client made (the router does not tell this session's own watch). */
  ownWrite(entry: MetadataValue, deleted: boolean): void {
    this.note(entry, deleted);
  }

  protected keyOf(e: MetadataValue): string {
    return e.key;
  }

  protected stale(current: MetadataValue, next: MetadataValue): boolean {
    return (
      current.version > next.version ||
      (current.version === next.version && current.updatedAt === next.updatedAt)
    );
  }

  protected tell(entry: MetadataValue, gone: boolean): unknown {
    return this.onChange(entry, gone);
  }

  protected async watchOn(
    session: RouterSession,
    changed: (e: MetadataValue, gone: boolean) => Promise<void> | undefined,
    missed: () => Promise<void> | undefined,
  ): Promise<{ watch: Watch; now: MetadataValue[] }> {
    const watcher = MetadataWatcher.server({
      changed: (p) => changed(readMetadataAny(p.entry), p.deleted),
      missed: () => missed(),
    });
    const call = session.metadataWatch({ watcher });
    try {
      const watch = (await call).watch;
      try {
        return { watch, now: await this.query(session) };
      } catch (err) {
        watch.dispose();
        throw err;
      }
    } finally {
      watcher.dispose();
      call.dispose();
    }
  }

  protected async query(session: RouterSession): Promise<MetadataValue[]> {
    return (await session.metadataList()).entries.toArray().flatMap((e) => readMetadata(e) ?? []);
  }
}

function closedError(): ParallaxError {
  return new ParallaxError(ErrorCode.DISCONNECTED, "this router client was closed");
}

function checkPrefix(prefix: string): string {
  if (typeof prefix !== "string")
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "the URI prefix must be text");
  if (prefix === "") return prefix;
  if (!prefix.endsWith(".")) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `the URI prefix "${prefix}" must end with "."`);
  }
  readUri(prefix.slice(0, -1), "the URI prefix");
  return prefix;
}

function matchName(match: UriMatchName): UriMatchName {
  if (!URI_MATCHES.includes(match)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `unknown match policy "${String(match)}": exact, prefix or wildcard`,
    );
  }
  return match;
}

function sessionId(n: number): bigint {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${n} is not a session id`);
  return BigInt(n);
}

function precondition(version: number | undefined): { none: null } | { version: bigint } {
  if (version === undefined) return { none: null };
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a metadata version is an integer >= 0; got ${version}`);
  }
  return { version: BigInt(version) };
}

function encodeJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${what} cannot be sent as JSON: ${(err as Error).message}`,
    );
  }
  if (text === undefined)
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what} cannot be sent as JSON (${typeof value})`);
  return text;
}

function encodePayload(
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
): { args: string; kwargs: string } {
  if (!Array.isArray(args)) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "args must be an array");
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "kwargs must be an object");
  }
  return {
    args: args.length === 0 ? "" : encodeJson(args, "args"),
    kwargs: Object.keys(kwargs).length === 0 ? "" : encodeJson(kwargs, "kwargs"),
  };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ParallaxError(ErrorCode.FAILED, `${what} is not JSON: ${(err as Error).message}`);
  }
}

function decodePayload(p: Payload, what: string): CallResult {
  const args = p.args === "" ? [] : parseJson(p.args, `${what}'s args`);
  const kwargs = p.kwargs === "" ? {} : parseJson(p.kwargs, `${what}'s kwargs`);
  if (!Array.isArray(args)) throw new ParallaxError(ErrorCode.FAILED, `${what}'s args are not a JSON array`);
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
    throw new ParallaxError(ErrorCode.FAILED, `${what}'s kwargs are not a JSON object`);
  }
  return { args, kwargs: kwargs as Record<string, unknown> };
}

async function readWhoAmI(session: RouterSession): Promise<RouterWhoAmI> {
  const info = (await session.whoami()).info;
  return {
    authid: info.authid,
    role: info.role,
    session: Number(info.session),
    authMethod: AUTH_METHODS[info.authMethod] ?? "unknown",
    apiKeyPermissions: info.apiKeyPermissions.toArray().map(readRule),
  };
}

function readRule(p: UriPermission): UriRule {
  return {
    uri: p.uri,
    match: URI_MATCHES[p.match] ?? "exact",
    call: p.call,
    register: p.register,
    publish: p.publish,
    subscribe: p.subscribe,
  };
}

function readRosterEntry(e: RosterEntry): RosterEntryValue {
  const o = e.owner;
  return {
    name: e.name,
    owner: { authid: o.authid, role: o.role, session: Number(o.session) },
    data: e.data === "" ? null : parseJson(e.data, `an entry of roster ${e.name}`),
    updatedAt: Number(e.updatedAt),
  };
}

function readRosterChange(c: RosterChange): RosterChangeValue {
  switch (c.which()) {
    case RosterChange_Which.JOINED:
      return { kind: "joined", entry: readRosterEntry(c.joined) };
    case RosterChange_Which.UPDATED:
      return { kind: "updated", entry: readRosterEntry(c.updated) };
    default:
      return { kind: "left", entry: readRosterEntry(c.left) };
  }
}

function sameEntry(a: RosterEntryValue, b: RosterEntryValue): boolean {
  return a.updatedAt === b.updatedAt && JSON.stringify(a.data) === JSON.stringify(b.data);
}

function readMetadataAny(e: MetadataEntry): MetadataValue {
  return {
    key: e.key,
    value: e.value === "" ? undefined : parseJson(e.value, `metadata ${e.key}`),
    version: Number(e.version),
    updatedAt: Number(e.updatedAt),
  };
}

function readMetadata(e: MetadataEntry): MetadataValue | undefined {
  return e.version === 0n ? undefined : readMetadataAny(e);
}

function readOutcome(o: MetadataOutcome): MetadataResult {
  switch (o.which()) {
    case MetadataOutcome_Which.OK:
      return { kind: "ok", entry: readMetadataAny(o.ok) };
    case MetadataOutcome_Which.CONFLICT:
      return { kind: "conflict", current: readMetadata(o.conflict) };
    case MetadataOutcome_Which.TOO_LARGE:
      return { kind: "tooLarge", maxBytes: o.tooLarge };
    default:
      return { kind: "tooMany", maxKeys: o.tooMany };
  }
}

function readApiKey(k: ApiKeyInfo): ApiKeyValue {
  return {
    id: Number(k.id),
    description: k.description,
    keyring: k.keyring.toArray().map((e) => ({ service: e.service, perspective: e.perspective })),
    permissions: k.permissions.toArray().map(readRule),
    createdAt: Number(k.createdAt),
    expiresAt: Number(k.expiresAt),
  };
}

/** A resume token for `identity`, or undefined for logins that get none (API key, OTP). */
async function issueToken(identity: Identity, device: string | undefined): Promise<string | undefined> {
  try {
    return (await identity.issueResumeToken({ device: device ?? "router client" })).token;
  } catch (err) {
    const error = toParallaxError(err);
    if (error.kind === "disconnected") throw error;
    return undefined;
  }
}

async function attachSession(identity: Identity): Promise<RouterSession> {
  const call = identity.attach({
    service: ROUTER_SESSION.service,
    perspective: ROUTER_SESSION.perspective,
    client: null,
  });
  try {
    const perspective = (await call).perspective;
    try {
      return perspective.castAs(ROUTER_SESSION.Ctor);
    } finally {
      perspective.dispose();
    }
  } finally {
    call.dispose();
  }
}

async function defaultPasswordLogin(root: Root, username: string, password: string): Promise<Identity> {
  const { loginWithPassword } = await import("../../login/client-login.js");
  return (await loginWithPassword(root, username, password)).identity;
}
