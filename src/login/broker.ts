/**
 * The Broker: joins the Authorizer (cred), the store and the services to the RPC engine. It makes
 * each connection's Root, keeps every live login (Session) by identity and by connection, and
 * carries revocation to all of them.
 *
 * Invariants:
 * - Every credential change commits its epoch bump in the store first, then `revokeIdentity`
 *   revokes, in the same turn, every live session of an older epoch on every connection.
 * - Changes committed by another process (the CLI) are noticed by watching the store's change
 *   counter while anyone is logged in or waiting, and revoke or decide the same way.
 * - A connection's sessions end (their perspectives detach) when it closes.
 */
import { scoped } from "../caps/index.js";
import { type Authorizer, type SignUpMode, StoreAuthorizer } from "../cred/authorizer.js";
import { KDF_DEFAULT, KDF_FLOOR } from "../cred/kdf.js";
import { LoginThrottle } from "../cred/login-throttle.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import { type Limits, resolveLimits } from "../limits.js";
import type { RpcConnection } from "../rpc/index.js";
import type { BrokerStore, IdentityRecord, KeyringPair, PendingRecord } from "../store/index.js";
import { Identity, Root } from "../wire/gen/broker.js";
import { AdminService } from "./admin.js";
import { IdentityUsage, Session } from "./grant.js";
import { IdentityServer } from "./identity.js";
import type { AuthMethodName, IdentityView, Service } from "./perspective.js";
import { RootServer } from "./root.js";

export interface BrokerOptions {
  readonly store: BrokerStore;
  /** Default: a StoreAuthorizer over `store`. */
  readonly authorizer?: Authorizer;
  readonly services?: readonly Service[];
  /** Default "closed". */
  readonly signUp?: SignUpMode;
  /** What new users may attach. Default: every service's perspectives named in `services`' defaults, none. */
  readonly defaultKeyring?: readonly KeyringPair[];
  /** Allow `Root.loginAnonymous` with this keyring. Default: not allowed. */
  readonly anonymousKeyring?: readonly KeyringPair[];
  readonly limits?: Partial<Limits>;
  readonly serverName?: string;
  /** How often to look for changes made by other processes, in ms. Default 500. */
  readonly watchIntervalMs?: number;
  readonly now?: () => number;
}

interface Waiter {
  readonly connection: RpcConnection;
  resolve(identity: Identity): void;
  reject(error: ParallaxError): void;
}

/** The keyring pair that makes an identity an admin. */
export const ADMIN_PAIR: KeyringPair = Object.freeze({ service: "broker", perspective: "admin" });

/** The identity id every anonymous login shares. */
export const ANONYMOUS_ID = -1;

export const RESUME_TOKEN_TTL_MS = 14 * 24 * 3600 * 1000;
export const OTP_TTL_MS = 10 * 60 * 1000;

export class Broker {
  readonly store: BrokerStore;
  readonly authorizer: Authorizer;
  readonly limits: Limits;
  readonly throttle: LoginThrottle;
  readonly signUpMode: SignUpMode;
  readonly defaultKeyring: readonly KeyringPair[];
  readonly anonymousKeyring: readonly KeyringPair[] | undefined;
  readonly serverName: string;
  readonly now: () => number;
  readonly kdfFloor = KDF_FLOOR;
  readonly kdfDefault = KDF_DEFAULT;
  readonly #services = new Map<string, Service>();
  readonly #usage = new Map<number, IdentityUsage>();
  readonly #byConnection = new Map<RpcConnection, Set<Session>>();
  readonly #waiters = new Map<number, Set<Waiter>>();
  /** The newest epoch revoked per identity: a login still running on an older one is refused. */
  readonly #revokedBefore = new Map<number, number>();
  #watch: ReturnType<typeof setInterval> | undefined;
  #lastChange: number;
  readonly #watchIntervalMs: number;
  #closed = false;

  constructor(options: BrokerOptions) {
    this.store = options.store;
    this.limits = resolveLimits(options.limits);
    this.now = options.now ?? Date.now;
    this.signUpMode = options.signUp ?? "closed";
    this.defaultKeyring = options.defaultKeyring ?? [];
    this.anonymousKeyring = options.anonymousKeyring;
    this.serverName = options.serverName ?? "parallax";
    this.authorizer =
      options.authorizer ??
      new StoreAuthorizer(this.store, {
        signUp: this.signUpMode,
        defaultKeyring: this.defaultKeyring,
        now: this.now,
      });
    this.throttle = new LoginThrottle({
      freeFailures: this.limits.loginFreeFailures,
      baseDelayMs: this.limits.loginDelayBaseMs,
      maxDelayMs: this.limits.loginDelayMaxMs,
      now: this.now,
    });
    this.#watchIntervalMs = options.watchIntervalMs ?? 500;
    this.#lastChange = this.store.externalChanges();
    this.addService(new AdminService(this));
    for (const s of options.services ?? []) this.addService(s);
  }

  addService(service: Service): void {
    if (this.#services.has(service.name)) {
      throw new ParallaxError(
        ErrorCode.ALREADY_EXISTS,
        `a service named "${service.name}" is registered already`,
      );
    }
    this.#services.set(service.name, service);
  }

  service(name: string): Service | undefined {
    return this.#services.get(name);
  }

  /** The bootstrap capability for one new connection. */
  root(connection: RpcConnection): Root {
    return Root.server(new RootServer(this, connection));
  }

  /** Opens a login on `connection` and returns its Identity capability (bound to the session). */
  openSession(
    connection: RpcConnection,
    identity: IdentityRecord | undefined,
    authMethod: AuthMethodName,
    grant: string,
    attenuated: readonly KeyringPair[] | null,
  ): Identity {
    if (connection.closed)
      throw new ParallaxError(ErrorCode.DISCONNECTED, "the connection closed during login");
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
    // Anonymous logins share one identity: one quota, one perspective per service.
    const id = identity?.id ?? ANONYMOUS_ID;
    let usage = this.#usage.get(id);
    if (usage === undefined) {
      usage = new IdentityUsage(this.limits.maxIdentityCallsInFlight, this.limits.maxIdentityExports, (u) => {
        if (this.#usage.get(id) === u) this.#usage.delete(id);
        this.#maybeStopWatching();
      });
      this.#usage.set(id, usage);
    }
    const view: IdentityView = {
      id,
      name: identity?.name ?? "anonymous",
      authMethod,
      keyring: attenuated ?? identity?.keyring ?? this.anonymousKeyring ?? [],
      epoch: identity?.epoch ?? 0,
    };
    const session = new Session(usage, view, grant, connection, attenuated);
    session.onReleased = (s) => this.#endSession(s, "released by the client");
    usage.sessions.add(session);
    let sessions = this.#byConnection.get(connection);
    if (sessions === undefined) {
      sessions = new Set();
      this.#byConnection.set(connection, sessions);
      connection.onClose(() => this.#connectionClosed(connection));
    }
    sessions.add(session);
    this.#startWatching();
    return scoped(Identity.server(new IdentityServer(this, session)), session);
  }

  /** Lets every service refuse a plain password change for `identityId` (see Service). */
  async beforePasswordChange(identityId: number): Promise<void> {
    for (const s of this.#services.values()) await s.beforePasswordChange?.(identityId);
  }

  /** Every live session on a connection (for `whoami`). */
  sessionsOn(connection: object): readonly Session[] {
    return [...(this.#byConnection.get(connection as RpcConnection) ?? [])];
  }

  /**
   * Revokes every live session of `identityId` from an epoch before `epoch`, on every
   * connection. Call after the store committed the bump.
   */
  revokeIdentity(identityId: number, epoch: number, reason: string): void {
    if (epoch > (this.#revokedBefore.get(identityId) ?? 0)) this.#revokedBefore.set(identityId, epoch);
    const usage = this.#usage.get(identityId);
    if (usage === undefined) return;
    for (const s of [...usage.sessions]) if (s.view.epoch < epoch) this.#endSession(s, reason);
  }

  #endSession(session: Session, reason: string): void {
    session.revoke(reason);
    session.usage.sessions.delete(session);
    const onConn = this.#byConnection.get(session.connection as RpcConnection);
    onConn?.delete(session);
    session.usage.settle();
    this.#maybeStopWatching();
  }

  #connectionClosed(connection: RpcConnection): void {
    const sessions = this.#byConnection.get(connection);
    this.#byConnection.delete(connection);
    for (const s of sessions ?? []) this.#endSession(s, "the connection closed");
    for (const [id, set] of this.#waiters) {
      for (const w of set) if (w.connection === connection) set.delete(w);
      if (set.size === 0) this.#waiters.delete(id);
    }
    this.#maybeStopWatching();
  }

  /** Waits for a pending request's decision on behalf of a client on `connection`. */
  waitForDecision(pending: PendingRecord, connection: RpcConnection): Promise<Identity> {
    return new Promise<Identity>((resolve, reject) => {
      const set = this.#waiters.get(pending.id) ?? new Set<Waiter>();
      this.#waiters.set(pending.id, set);
      set.add({ connection, resolve, reject });
      this.#startWatching();
      // It may have been decided before we started waiting.
      void this.#checkPending(pending.id);
    });
  }

  /** Decides a pending request and tells whoever waits for it. */
  async decide(id: number, approve: boolean, reason: string, by: string): Promise<void> {
    const decision = await this.store.decidePending(id, approve, reason, this.defaultKeyring, {
      kind: approve ? "approved" : "rejected",
      identityId: null,
      username: by,
      remoteAddress: "",
      detail: `request ${id}${reason === "" ? "" : `: ${reason}`}`,
    });
    this.#settleWaiters(decision.request, decision.identity);
  }

  async #checkPending(id: number): Promise<void> {
    if (!this.#waiters.has(id)) return;
    const request = await this.store.findPending(id);
    if (request === undefined) {
      this.#settleWaiters(undefined, null, id);
      return;
    }
    if (request.state === "pending" && request.expiresAt > this.now()) return;
    const identity =
      request.state === "approved" ? await this.store.findIdentityByName(request.username) : undefined;
    this.#settleWaiters(request, identity ?? null);
  }

  #settleWaiters(
    request: PendingRecord | undefined,
    identity: IdentityRecord | null,
    id = request?.id ?? -1,
  ): void {
    const set = this.#waiters.get(id);
    if (set === undefined) return;
    this.#waiters.delete(id);
    for (const w of set) {
      if (request === undefined || request.state !== "approved" || identity === null || identity.suspended) {
        const why =
          request === undefined
            ? "the request no longer exists"
            : request.state === "rejected"
              ? `rejected${request.reason === "" ? "" : `: ${request.reason}`}`
              : "the request expired";
        w.reject(new ParallaxError(ErrorCode.REJECTED, why));
        continue;
      }
      try {
        const method: AuthMethodName = request.kind === "signUp" ? "signUp" : "publicKey";
        const grant = request.kind === "signUp" ? "approved sign-up" : `device key "${request.device}"`;
        w.resolve(this.openSession(w.connection, identity, method, grant, null));
      } catch (err) {
        w.reject(err instanceof ParallaxError ? err : new ParallaxError(ErrorCode.FAILED, String(err)));
      }
    }
    this.#maybeStopWatching();
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
      if (id < 0 || usage.sessions.size === 0) continue;
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

  /** Ends every session and stops watching; the store stays open (its owner closes it). */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#byConnection.keys()]) this.#connectionClosed(c);
    for (const [, set] of this.#waiters)
      for (const w of set) w.reject(new ParallaxError(ErrorCode.DISCONNECTED, "the broker is shutting down"));
    this.#waiters.clear();
    if (this.#watch !== undefined) clearInterval(this.#watch);
    this.#watch = undefined;
  }

  /** The number of identities with live sessions (for tests and stats). */
  get liveIdentities(): number {
    return [...this.#usage.values()].filter((u) => u.sessions.size > 0).length;
  }

  usageOf(identityId: number): { callsInFlight: number; exports: number; sessions: number } | undefined {
    const u = this.#usage.get(identityId);
    return u === undefined
      ? undefined
      : { callsInFlight: u.callsInFlight, exports: u.exports, sessions: u.sessions.size };
  }
}

/** Is `pair` on `keyring`? */
export function onKeyring(keyring: readonly KeyringPair[], pair: KeyringPair): boolean {
  return keyring.some((k) => k.service === pair.service && k.perspective === pair.perspective);
}
