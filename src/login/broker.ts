/**
 * The Broker: joins the Authorizer (cred), the store and the services to the RPC engine. It makes
 * each connection's Root, keeps every live Login by identity and by connection, carries
 * revocation to all of them, and runs the services it was given as modules.
 *
 * Invariants:
 * - Every credential change commits its epoch bump in the store first, then `revokeIdentity`
 *   ends, in the same turn, every live login of an older epoch on every connection.
 * - Changes committed by another process (the CLI) are noticed by watching the store's change
 *   counter while anyone is logged in or waiting, and revoke or decide the same way.
 * - A connection's logins end (their perspectives detach) when it closes.
 * - A client waiting on a pending request is answered when it is decided or when it expires (a
 *   timer on the broker's clock), and only ever with the login of the key it proved it holds.
 * - At most `maxPreLoginConnectionsPerAddress` connections per address (IPv6: per /64) hold no
 *   login yet; one more is aborted at once.
 *
 * Tests: test/login/*.test.ts
 */
import { scoped } from "../caps/index.js";
import { type Clock, systemClock, type Timer } from "../clock.js";
import { addressKey } from "../cred/address-key.js";
import { type Authorizer, type SignUpMode, StoreAuthorizer } from "../cred/authorizer.js";
import { KDF_DEFAULT, KDF_FLOOR } from "../cred/kdf.js";
import { LoginThrottle } from "../cred/login-throttle.js";
import { constantTimeEqual } from "../cred/secrets.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import { type Limits, resolveLimits } from "../limits.js";
import type { RpcConnection } from "../rpc/index.js";
import type { BrokerStore, IdentityRecord, KeyringPair, PendingRecord } from "../store/index.js";
import { Identity, Root } from "../wire/gen/broker.js";
import { adminModule } from "./admin.js";
import { type EventBus, InProcessBus } from "./event-bus.js";
import { type DetachReason, detachReason, IdentityUsage, Login, releaseReason } from "./grant.js";
import { IdentityServer } from "./identity.js";
import { onKeyring } from "./keyring.js";
import type { AuthMethodName, IdentityView, Service } from "./perspective.js";
import { keyringPair } from "./perspective-key.js";
import { RootServer } from "./root.js";
import type { ServiceHost, ServiceModule } from "./service-module.js";
import type { UriRule } from "./uri-permissions.js";

export interface BrokerOptions {
  readonly store: BrokerStore;
  /** Default: a StoreAuthorizer over `store`. */
  readonly authorizer?: Authorizer;
  /** The services to run (the admin service always runs). Default: none. */
  readonly services?: readonly ServiceModule[];
  /** Default "closed". */
  readonly signUp?: SignUpMode;
  /** What new users may attach. Default: the union of the modules' `defaultKeyring`s. */
  readonly defaultKeyring?: readonly KeyringPair[];
  /** Allow `Root.loginAnonymous` with this keyring. Default: not allowed. */
  readonly anonymousKeyring?: readonly KeyringPair[];
  readonly limits?: Partial<Limits>;
  readonly serverName?: string;
  /** How often to look for changes made by other processes, in ms. Default 500. */
  readonly watchIntervalMs?: number;
  /** Default: the system clock. Tests pass a `ManualClock`. */
  readonly clock?: Clock;
  /** Default: a new InProcessBus. */
  readonly bus?: EventBus;
}

/** How a login was made: what `openLogin` records on the Login. */
export interface LoginGrant {
  readonly method: AuthMethodName;
  /** For people: "password", "api key 3 (ci)". */
  readonly label: string;
  /** The attenuated keyring (API keys, tokens of attenuated logins); null = the identity's. */
  readonly attenuated: readonly KeyringPair[] | null;
  /** Resumed logins: the token family they continue (their logout ends it). */
  readonly resumeFamily?: Uint8Array;
  /** API-key logins: the key's URI limits (`IdentityView.uriPermissions`); omitted = none. */
  readonly uriPermissions?: readonly UriRule[];
}

interface Waiter {
  readonly connection: RpcConnection;
  /** The key whose signature the requester proved (device requests); null for sign-ups. */
  readonly publicKey: Uint8Array | null;
  resolve(identity: Identity): void;
  reject(error: ParallaxError): void;
}

interface WaitGroup {
  readonly waiters: Set<Waiter>;
  timer: Timer | undefined;
}

/** The view every anonymous login shares. */
const ANONYMOUS_ID = 0;

export class Broker implements ServiceHost {
  readonly store: BrokerStore;
  readonly authorizer: Authorizer;
  readonly limits: Limits;
  readonly throttle: LoginThrottle;
  readonly signUpMode: SignUpMode;
  readonly defaultKeyring: readonly KeyringPair[];
  readonly anonymousKeyring: readonly KeyringPair[] | undefined;
  readonly serverName: string;
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly kdfFloor = KDF_FLOOR;
  readonly kdfDefault = KDF_DEFAULT;
  readonly #services = new Map<string, Service>();
  readonly #usage = new Map<number, IdentityUsage>();
  readonly #anonymousUsage: { usage: IdentityUsage | undefined } = { usage: undefined };
  readonly #byConnection = new Map<RpcConnection, Set<Login>>();
  readonly #waiters = new Map<number, WaitGroup>();
  /** The newest epoch revoked per identity: a login still running on an older one is refused. */
  readonly #revokedBefore = new Map<number, number>();
  /** Connections that have not logged in yet, per address key. */
  readonly #preLogin = new Map<string, Set<RpcConnection>>();
  #watch: ReturnType<typeof setInterval> | undefined;
  #sweep: Timer | undefined;
  #lastChange: number;
  readonly #watchIntervalMs: number;
  #closed = false;

  constructor(options: BrokerOptions) {
    this.store = options.store;
    this.limits = resolveLimits(options.limits);
    this.clock = options.clock ?? systemClock;
    this.bus = options.bus ?? new InProcessBus();
    this.signUpMode = options.signUp ?? "closed";
    const modules = [adminModule(this), ...(options.services ?? [])];
    this.defaultKeyring =
      options.defaultKeyring ?? uniquePairs(modules.flatMap((m) => m.defaultKeyring.map(keyringPair)));
    this.anonymousKeyring = options.anonymousKeyring;
    this.serverName = options.serverName ?? "parallax";
    const now = () => this.clock.now();
    this.authorizer =
      options.authorizer ??
      new StoreAuthorizer(this.store, {
        signUp: this.signUpMode,
        defaultKeyring: this.defaultKeyring,
        pendingTtlMs: this.limits.pendingTtlMs,
        maxPendingDevicesPerName: this.limits.maxPendingDevicesPerName,
        now,
      });
    this.throttle = new LoginThrottle({
      freeFailures: this.limits.loginFreeFailures,
      baseDelayMs: this.limits.loginDelayBaseMs,
      maxDelayMs: this.limits.loginDelayMaxMs,
      globalRatePerSecond: this.limits.loginFloodRatePerSecond,
      now,
    });
    this.#watchIntervalMs = options.watchIntervalMs ?? 500;
    this.#lastChange = this.store.externalChanges();
    for (const m of modules) this.#start(m);
    this.#scheduleSweep();
  }

  #start(module: ServiceModule): void {
    if (this.#services.has(module.name)) {
      throw new ParallaxError(
        ErrorCode.ALREADY_EXISTS,
        `a service named "${module.name}" is registered already`,
      );
    }
    let repository: unknown;
    if (module.store !== undefined) {
      repository = this.store.repository(module.store);
      if (repository === undefined) {
        throw new ParallaxError(
          ErrorCode.STORAGE,
          `the ${module.name} service needs a store with the ${module.store.name} contract; this store has none`,
        );
      }
    }
    const service = module.create({
      store: this.store,
      repository,
      clock: this.clock,
      bus: this.bus,
      limits: this.limits,
      host: this,
    });
    if (service.name !== module.name) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `the module "${module.name}" made a service named "${service.name}"`,
      );
    }
    this.#services.set(service.name, service);
  }

  service(name: string): Service | undefined {
    return this.#services.get(name);
  }

  /**
   * The bootstrap capability for one new connection. A connection beyond
   * `maxPreLoginConnectionsPerAddress` from its address is aborted (its Root refuses everything).
   */
  root(connection: RpcConnection): Root {
    const key = addressKey(connection.remoteAddress ?? "");
    if (key !== "") {
      let set = this.#preLogin.get(key);
      if (set === undefined) {
        set = new Set();
        this.#preLogin.set(key, set);
      }
      if (set.size >= this.limits.maxPreLoginConnectionsPerAddress) {
        const error = new ParallaxError(
          ErrorCode.QUOTA,
          `this address has ${set.size} connections that have not logged in (maxPreLoginConnectionsPerAddress); log in on one or close one`,
        );
        queueMicrotask(() => connection.abort(error));
        return Root.server(new RootServer(this, connection, error));
      }
      set.add(connection);
      const done = () => this.#loggedIn(connection, key);
      connection.onClose(done);
    }
    return Root.server(new RootServer(this, connection));
  }

  /** The connection no longer counts as one that has not logged in. */
  #loggedIn(connection: RpcConnection, key: string): void {
    const set = this.#preLogin.get(key);
    if (set?.delete(connection) && set.size === 0) this.#preLogin.delete(key);
  }

  /** Connections from `address` that have not logged in (for tests and stats). */
  preLoginConnections(address: string): number {
    return this.#preLogin.get(addressKey(address))?.size ?? 0;
  }

  /** Opens a login on `connection` and returns its Identity capability (bound to the Login). */
  openLogin(connection: RpcConnection, identity: IdentityRecord | undefined, grant: LoginGrant): Identity {
    const login = this.#newLogin(connection, identity, grant);
    return scoped(Identity.server(new IdentityServer(this, login)), login);
  }

  #newLogin(connection: RpcConnection, identity: IdentityRecord | undefined, grant: LoginGrant): Login {
    if (connection.closed) {
      throw new ParallaxError(ErrorCode.DISCONNECTED, "the connection closed during login");
    }
    if (identity !== undefined && identity.epoch < (this.#revokedBefore.get(identity.id) ?? 0)) {
      throw new ParallaxError(
        ErrorCode.AUTH_FAILED,
        "authentication failed: the credentials changed during the login; start a new one",
      );
    }
    const onConnection = this.#byConnection.get(connection)?.size ?? 0;
    if (onConnection >= this.limits.maxLoginsPerConnection) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this connection holds ${onConnection} logins (maxLoginsPerConnection); release or log out one first`,
      );
    }
    const usage = this.#usageFor(identity);
    const view: IdentityView = Object.freeze({
      id: identity?.id ?? ANONYMOUS_ID,
      anonymous: identity === undefined,
      name: identity?.name ?? "anonymous",
      authMethod: grant.method,
      keyring: Object.freeze([...(grant.attenuated ?? identity?.keyring ?? this.anonymousKeyring ?? [])]),
      epoch: identity?.epoch ?? 0,
      ...(grant.uriPermissions !== undefined && grant.uriPermissions.length > 0
        ? { uriPermissions: Object.freeze(grant.uriPermissions.map((r) => Object.freeze({ ...r }))) }
        : {}),
    });
    const login = new Login(usage, view, grant.label, connection, grant.attenuated);
    login.resumedFrom = grant.resumeFamily;
    login.onReleased = (l) => this.#endLogin(l, releaseReason(l.connection));
    usage.logins.add(login);
    let logins = this.#byConnection.get(connection);
    if (logins === undefined) {
      logins = new Set();
      this.#byConnection.set(connection, logins);
      connection.onClose(() => this.#connectionClosed(connection));
    }
    logins.add(login);
    const key = addressKey(connection.remoteAddress ?? "");
    if (key !== "") this.#loggedIn(connection, key);
    this.#startWatching();
    return login;
  }

  #usageFor(identity: IdentityRecord | undefined): IdentityUsage {
    const make = (forget: (u: IdentityUsage) => void) =>
      new IdentityUsage(this.limits.maxIdentityCallsInFlight, this.limits.maxIdentityExports, (u) => {
        forget(u);
        this.#maybeStopWatching();
      });
    // Anonymous logins share one usage: one quota for all of them.
    if (identity === undefined) {
      const slot = this.#anonymousUsage;
      slot.usage ??= make((u) => {
        if (slot.usage === u) slot.usage = undefined;
      });
      return slot.usage;
    }
    const id = identity.id;
    let usage = this.#usage.get(id);
    if (usage === undefined) {
      usage = make((u) => {
        if (this.#usage.get(id) === u) this.#usage.delete(id);
      });
      this.#usage.set(id, usage);
    }
    return usage;
  }

  /** Every live login of `identityId` on `connection` (for `whoami`). */
  loginsOf(identityId: number, connection: RpcConnection): readonly Login[] {
    return [...(this.#byConnection.get(connection) ?? [])].filter(
      (l) => !l.view.anonymous && l.view.id === identityId,
    );
  }

  /**
   * Ends every live login of `identityId` from an epoch before `epoch`, on every connection.
   * Call after the store committed the bump.
   */
  revokeIdentity(identityId: number, epoch: number, reason: string): void {
    if (epoch > (this.#revokedBefore.get(identityId) ?? 0)) this.#revokedBefore.set(identityId, epoch);
    const usage = this.#usage.get(identityId);
    if (usage === undefined) return;
    const why = detachReason("revoked", reason);
    for (const l of [...usage.logins]) if (l.view.epoch < epoch) this.#endLogin(l, why);
  }

  /**
   * Ends every live login of `identityId` resumed from the token `family` (its tokens were found
   * copied), on every connection; the user's other logins, the one that issued it included, go on.
   */
  endResumeFamily(identityId: number, family: Uint8Array, reason: string): void {
    const usage = this.#usage.get(identityId);
    if (usage === undefined) return;
    const why = detachReason("revoked", reason);
    for (const l of [...usage.logins]) {
      if (l.resumedFrom !== undefined && constantTimeEqual(l.resumedFrom, family)) this.#endLogin(l, why);
    }
  }

  /** Ends one login (its attachments detach), leaving the user's other logins alone. */
  endLogin(login: Login, reason: DetachReason): void {
    this.#endLogin(login, reason);
  }

  #endLogin(login: Login, reason: DetachReason): void {
    login.end(reason);
    login.usage.logins.delete(login);
    this.#byConnection.get(login.connection)?.delete(login);
    login.usage.settle();
    this.#maybeStopWatching();
  }

  #connectionClosed(connection: RpcConnection): void {
    const logins = this.#byConnection.get(connection);
    this.#byConnection.delete(connection);
    const why = detachReason("disconnected", "the connection closed");
    for (const l of logins ?? []) this.#endLogin(l, why);
    for (const [id, group] of this.#waiters) {
      for (const w of group.waiters) if (w.connection === connection) group.waiters.delete(w);
      if (group.waiters.size === 0) this.#dropWaitGroup(id);
    }
    this.#maybeStopWatching();
  }

  /**
   * Waits for a pending request's decision on behalf of a client on `connection`. A device
   * request is answered with a login only if the approved key is `publicKey`, the key whose
   * signature the client proved; the wait ends when the request expires.
   */
  waitForDecision(
    pending: PendingRecord,
    connection: RpcConnection,
    publicKey: Uint8Array | null,
  ): Promise<Identity> {
    return new Promise<Identity>((resolve, reject) => {
      let group = this.#waiters.get(pending.id);
      if (group === undefined) {
        group = { waiters: new Set(), timer: undefined };
        this.#waiters.set(pending.id, group);
        const left = Math.max(0, pending.expiresAt - this.clock.now());
        group.timer = this.clock.setTimer(left, () => void this.#checkPending(pending.id));
      }
      group.waiters.add({ connection, publicKey, resolve, reject });
      this.#startWatching();
      // It may have been decided before we started waiting.
      void this.#checkPending(pending.id);
    });
  }

  #dropWaitGroup(id: number): void {
    const group = this.#waiters.get(id);
    group?.timer?.cancel();
    this.#waiters.delete(id);
  }

  /** Decides a pending request and tells whoever waits for it. */
  async decide(
    id: number,
    approve: boolean,
    reason: string,
    by: {
      readonly name: string;
      readonly actor: { identityId: number; epoch: number } | null;
      address: string;
    },
  ): Promise<void> {
    const decision = await this.store.decidePending(id, approve, reason, this.defaultKeyring, {
      actor: by.actor ?? undefined,
      audit: {
        kind: approve ? "approved" : "rejected",
        identityId: by.actor?.identityId ?? null,
        username: by.name,
        remoteAddress: by.address,
        detail: `request ${id}${reason === "" ? "" : `: ${reason}`}`,
      },
    });
    this.#settleWaiters(id, decision.request, decision.identity);
  }

  async #checkPending(id: number): Promise<void> {
    if (!this.#waiters.has(id)) return;
    const request = await this.store.findPending(id);
    if (request?.state === "pending" && request.expiresAt > this.clock.now()) return;
    const identity =
      request?.state === "approved" ? await this.store.findIdentityByName(request.username) : undefined;
    this.#settleWaiters(id, request, identity ?? null);
  }

  #settleWaiters(id: number, request: PendingRecord | undefined, identity: IdentityRecord | null): void {
    const group = this.#waiters.get(id);
    if (group === undefined) return;
    this.#dropWaitGroup(id);
    for (const w of group.waiters) {
      if (request === undefined || request.state !== "approved" || identity === null || identity.suspended) {
        const why =
          request === undefined
            ? "the request no longer exists"
            : request.state === "rejected"
              ? `rejected${request.reason === "" ? "" : `: ${request.reason}`}`
              : request.state === "approved"
                ? "the account is not available"
                : "the request expired";
        w.reject(new ParallaxError(ErrorCode.REJECTED, why));
        continue;
      }
      // Only the holder of the approved key gets a login (requests are never shared, but a
      // waiter is bound to its key all the same).
      if (
        request.kind === "deviceKey" &&
        (w.publicKey === null ||
          request.publicKey === null ||
          !constantTimeEqual(w.publicKey, request.publicKey))
      ) {
        w.reject(new ParallaxError(ErrorCode.REJECTED, "this request was approved for another key"));
        continue;
      }
      try {
        const grant: LoginGrant =
          request.kind === "signUp"
            ? { method: "signUp", label: "approved sign-up", attenuated: null }
            : { method: "publicKey", label: `device key "${request.device}"`, attenuated: null };
        w.resolve(this.openLogin(w.connection, identity, grant));
      } catch (err) {
        w.reject(err instanceof ParallaxError ? err : new ParallaxError(ErrorCode.FAILED, String(err)));
      }
    }
    this.#maybeStopWatching();
  }

  /** Clients waiting on request `id` (for tests). */
  waitersOf(id: number): number {
    return this.#waiters.get(id)?.waiters.size ?? 0;
  }

  #scheduleSweep(): void {
    if (this.#closed) return;
    this.#sweep = this.clock.setTimer(this.limits.sweepIntervalMs, () => {
      void this.sweepExpired().finally(() => this.#scheduleSweep());
    });
  }

  /** Deletes expired credentials and requests from the store now (also runs on a timer). */
  async sweepExpired(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.store.purgeExpired(this.clock.now());
    } catch {
      // A failed sweep is retried at the next interval; nothing depends on it for correctness.
    }
  }

  #startWatching(): void {
    if (this.#watch !== undefined || this.#closed) return;
    this.#lastChange = this.store.externalChanges();
    this.#watch = setInterval(() => void this.#pollExternal(), this.#watchIntervalMs);
    this.#watch.unref();
  }

  #maybeStopWatching(): void {
    if (this.#watch === undefined || this.#usage.size > 0 || this.#waiters.size > 0) return;
    clearInterval(this.#watch);
    this.#watch = undefined;
  }

  /** Looks for epochs and decisions another process (the CLI) committed. */
  async #pollExternal(): Promise<void> {
    const change = this.store.externalChanges();
    if (change === this.#lastChange) return;
    this.#lastChange = change;
    await this.syncExternalChanges();
  }

  /** Applies what other processes committed: revocations and decisions. */
  async syncExternalChanges(): Promise<void> {
    for (const [id, usage] of [...this.#usage]) {
      if (usage.logins.size === 0) continue;
      const record = await this.store.findIdentityById(id);
      const epoch = record === undefined ? Number.MAX_SAFE_INTEGER : record.epoch;
      const reason =
        record === undefined
          ? "the identity was deleted"
          : record.suspended
            ? "the account was suspended"
            : "credentials changed";
      if (record?.suspended) this.revokeIdentity(id, Number.MAX_SAFE_INTEGER, reason);
      else this.revokeIdentity(id, epoch, reason);
    }
    for (const id of [...this.#waiters.keys()]) await this.#checkPending(id);
  }

  /** Ends every login, stops the services and timers; the store stays open (its owner closes it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [...this.#byConnection.keys()]) this.#connectionClosed(c);
    for (const [id, group] of [...this.#waiters]) {
      this.#dropWaitGroup(id);
      for (const w of group.waiters)
        w.reject(new ParallaxError(ErrorCode.DISCONNECTED, "the broker is shutting down"));
    }
    this.#sweep?.cancel();
    if (this.#watch !== undefined) clearInterval(this.#watch);
    this.#watch = undefined;
    for (const s of this.#services.values()) s.close?.();
  }

  /** The number of identities with live logins (for tests and stats). */
  get liveIdentities(): number {
    let n = this.#anonymousUsage.usage?.logins.size ? 1 : 0;
    for (const u of this.#usage.values()) if (u.logins.size > 0) n++;
    return n;
  }

  usageOf(identityId: number): { callsInFlight: number; exports: number; logins: number } | undefined {
    const u = this.#usage.get(identityId);
    return u === undefined
      ? undefined
      : { callsInFlight: u.callsInFlight, exports: u.exports, logins: u.logins.size };
  }

  /** True when nothing is left: no login, usage, waiter or pre-login connection (leak checks). */
  get idle(): boolean {
    return (
      this.#usage.size === 0 &&
      this.#anonymousUsage.usage === undefined &&
      this.#byConnection.size === 0 &&
      this.#waiters.size === 0 &&
      this.#preLogin.size === 0
    );
  }
}

function uniquePairs(pairs: readonly KeyringPair[]): KeyringPair[] {
  const out: KeyringPair[] = [];
  for (const p of pairs) if (!onKeyring(out, p)) out.push(p);
  return out;
}
