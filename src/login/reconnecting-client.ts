/**
 * A client that survives dropped connections: it logs in once, keeps a resume token, and after a
 * disconnect reconnects, resumes with the token (keeping the rotated one the server answers) and
 * re-attaches every perspective it had. When it cannot (the user's epoch moved on: password
 * changed, logged out, revoked; or the token was used elsewhere), it says so and stops.
 *
 * A page (or process) that must come back after it restarts keeps the token itself: `onToken`
 * tells every token the client holds as it changes, and a new client given `resumeToken` starts
 * by resuming with it instead of logging in (a resumed login cannot issue tokens; it carries on
 * with the rotated one `Root.resume` answers).
 *
 * Invariants: at most one reconnect loop runs; each attached perspective's `current` stub is
 * replaced (and the old one disposed) on every successful re-attach; the token kept is always the
 * newest the server issued, and `onToken` hears each one before anything else may use it;
 * after `close()` nothing reconnects.
 *
 * Tests: test/login/reconnecting-client.test.ts
 */
import type { Capability } from "../caps/index.js";
import { type Clock, systemClock } from "../clock.js";
import { ErrorCode, ParallaxError, toParallaxError } from "../errors.js";
import { onDisconnect, type RpcConnection } from "../rpc/index.js";
import { type Identity, Root } from "../wire/gen/broker.js";
import type { PerspectiveKey } from "./perspective-key.js";

export type ReconnectEvent =
  | { readonly type: "connected"; readonly resumed: boolean }
  | { readonly type: "disconnected"; readonly error: ParallaxError }
  | {
      readonly type: "retrying";
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: ParallaxError;
    }
  /** Resuming is impossible (epoch changed, token expired): log in again with credentials. */
  | { readonly type: "failed"; readonly error: ParallaxError };

export interface ReconnectingClientOptions {
  /** Opens a new connection (e.g. `() => connect(url)`). */
  readonly connect: () => Promise<RpcConnection>;
  /** The first login, given the Root of a fresh connection. Not called when `resumeToken` is given. */
  readonly login: (root: Root) => Promise<Identity>;
  /**
   * Start by resuming with this token (the newest `onToken` told an earlier client) instead of
   * logging in. A token the server refuses fails `start` (PARALLAX_ERR_AUTH_FAILED).
   */
  readonly resumeToken?: string;
  /**
   * Told each token the client holds, as it changes: the one issued (or rotated) at `start`, then
   * the one every resume answers; `undefined` once resuming failed for good. What to keep
   * to come back after a restart (never the password).
   */
  readonly onToken?: (token: string | undefined) => void;
  /** Names this device on the resume token. */
  readonly device?: string;
  readonly onEvent?: (event: ReconnectEvent) => void;
  /** First retry delay in ms, doubled per attempt up to `maxDelayMs`. Default 200. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Waits between retries on this clock. Default: the system clock. */
  readonly clock?: Clock;
}

/** A perspective the client keeps attached across reconnects. */
export class AttachedPerspective<C extends Capability> {
  #current: C | undefined;
  readonly #listeners = new Set<(cap: C) => void>();

  constructor(
    readonly key: PerspectiveKey<C>,
    /** Made again for every attachment (the callback capability the server receives). */
    readonly makeClient: (() => Capability | null) | undefined,
  ) {}

  /** The stub of the live attachment; throws while disconnected. */
  get current(): C {
    if (this.#current === undefined) {
      throw new ParallaxError(
        ErrorCode.DISCONNECTED,
        `${this.key.service}/${this.key.perspective} is not attached right now`,
      );
    }
    return this.#current;
  }

  /** Calls `listener` with each new stub after a re-attach. */
  onReattach(listener: (cap: C) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal Replaces the stub (disposing the old one). */
  set(cap: C | undefined): void {
    if (this.#current !== cap) this.#current?.dispose();
    this.#current = cap;
  }

  /** @internal Tells the listeners about the current stub. */
  announce(): void {
    const cap = this.#current;
    if (cap !== undefined) for (const l of this.#listeners) l(cap);
  }
}

export class ReconnectingClient {
  #connection: RpcConnection | undefined;
  #identity: Identity | undefined;
  #token: string | undefined;
  #closed = false;
  #reconnecting: Promise<void> | undefined;
  readonly #attached: AttachedPerspective<Capability>[] = [];

  constructor(private readonly options: ReconnectingClientOptions) {}

  /** Connects and logs in (or resumes with `resumeToken`). */
  async start(): Promise<Identity> {
    const connection = await this.options.connect();
    const kept = this.options.resumeToken;
    let identity: Identity | undefined;
    try {
      using root = connection.bootstrap(Root);
      if (kept !== undefined) {
        const resumed = await root.resume({ token: kept });
        identity = resumed.identity;
        this.#setToken(resumed.token);
      } else {
        identity = await this.options.login(root);
        const issued = await identity.issueResumeToken({
          device: this.options.device ?? "reconnecting client",
        });
        this.#setToken(issued.token);
      }
    } catch (err) {
      identity?.dispose();
      connection.close();
      throw err;
    }
    this.#adopt(connection, identity);
    this.#emit({ type: "connected", resumed: kept !== undefined });
    return identity;
  }

  #setToken(token: string | undefined): void {
    this.#token = token;
    try {
      this.options.onToken?.(token);
    } catch {
      // a listener's failure is not the client's
    }
  }

  /** The Identity of the current connection. */
  get identity(): Identity {
    if (this.#identity === undefined) throw new ParallaxError(ErrorCode.DISCONNECTED, "not connected");
    return this.#identity;
  }

  get connection(): RpcConnection | undefined {
    return this.#connection;
  }

  /** Attaches a perspective now and again after every reconnect. */
  async attach<C extends Capability>(
    key: PerspectiveKey<C>,
    makeClient?: () => Capability | null,
  ): Promise<AttachedPerspective<C>> {
    const handle = new AttachedPerspective<C>(key, makeClient);
    handle.set(await this.#attachOne(this.identity, handle));
    this.#attached.push(handle as unknown as AttachedPerspective<Capability>);
    return handle;
  }

  async #attachOne<C extends Capability>(identity: Identity, h: AttachedPerspective<C>): Promise<C> {
    const client = h.makeClient?.() ?? null;
    try {
      const res = await identity.attach({ service: h.key.service, perspective: h.key.perspective, client });
      return res.perspective.castAs(h.key.Ctor);
    } finally {
      client?.dispose();
    }
  }

  #adopt(connection: RpcConnection, identity: Identity): void {
    this.#connection = connection;
    this.#identity = identity;
    onDisconnect(identity, (error) => {
      if (this.#connection !== connection) return;
      this.#connection = undefined;
      this.#identity = undefined;
      for (const h of this.#attached) h.set(undefined);
      if (this.#closed) return;
      this.#emit({ type: "disconnected", error });
      this.#reconnecting ??= this.#reconnect().finally(() => {
        this.#reconnecting = undefined;
      });
    });
  }

  /** Settles once the current reconnect attempt is over (at once if none runs). */
  async settled(): Promise<void> {
    await this.#reconnecting;
  }

  async #reconnect(): Promise<void> {
    const base = this.options.baseDelayMs ?? 200;
    const max = this.options.maxDelayMs ?? 30_000;
    for (let attempt = 1; !this.#closed; attempt++) {
      let connection: RpcConnection | undefined;
      try {
        connection = await this.options.connect();
        // Not `using`: esbuild (tsx, vitest, the page bundles) lowers a `using` in a loop with
        // the error flag hoisted out of the loop, so after one failed attempt every later one
        // would rethrow that attempt's error from its cleanup, and the client never came back.
        const root = connection.bootstrap(Root);
        let resumed: Awaited<ReturnType<Root["resume"]>>;
        try {
          resumed = await root.resume({ token: this.#token ?? "" });
        } finally {
          root.dispose();
        }
        // Rotated: the one just presented is spent.
        this.#setToken(resumed.token);
        const identity = resumed.identity;
        for (const h of this.#attached) h.set(await this.#attachOne(identity, h));
        if (this.#closed) {
          connection.close();
          return;
        }
        this.#adopt(connection, identity);
        for (const h of this.#attached) h.announce();
        this.#emit({ type: "connected", resumed: true });
        return;
      } catch (err) {
        const error = toParallaxError(err);
        if (error.code === ErrorCode.AUTH_FAILED || error.code === ErrorCode.REVOKED) {
          connection?.close();
          this.#setToken(undefined);
          this.#emit({
            type: "failed",
            error: new ParallaxError(
              error.code,
              `cannot resume the session: ${error.message}. The credentials changed or the session was revoked; log in again`,
            ),
          });
          return;
        }
        connection?.close();
        const delayMs = Math.min(max, base * 2 ** (attempt - 1));
        this.#emit({ type: "retrying", attempt, delayMs, error });
        await new Promise<void>((r) => (this.options.clock ?? systemClock).setTimer(delayMs, r));
      }
    }
  }

  #emit(event: ReconnectEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // a listener's failure is not the client's
    }
  }

  /** Stops reconnecting and closes the connection. */
  close(): void {
    this.#closed = true;
    for (const h of this.#attached) h.set(undefined);
    this.#identity?.dispose();
    this.#connection?.close();
  }
}
