/**
 * The wallet-sync client (seed 000, LBRY's test client) over Parallax capabilities: it signs up
 * with a verifier, logs in with SCRAM, attaches ("wallet", "owner") with a WalletWatcher, and keeps
 * one user's encrypted wallet in sync across devices.
 *
 * The seed's client, method by method:
 *   register()              → `register()`: a verifier with a new random salt (the "salt seed")
 *   update_derived_secrets()→ `updateDerivedSecrets()`: asks the server for the current salt, derives
 *   get_auth_token()        → `login()`: password login, then attach the WalletPerspective
 *   init_wallet_state()     → `initWalletState()`
 *   get_remote_wallet()     → `getRemoteWallet()`: get, verify the hmac, decrypt, three-way merge
 *   update_remote_wallet()  → `updateRemoteWallet()`: push at sequence + 1, or learn of a conflict
 *   change_password(pw)     → `changePassword(pw)`
 *   set_local_password(pw)  → `setLocalPassword(pw)`
 *   start_websocket()       → `watch(listener)`: the WalletWatcher callback every login attaches
 *
 * Invariants:
 * - Only ciphertext, its hmac, the verifier (at sign-up and password change) and SCRAM proofs leave
 *   this process: never the password, SaltedPassword, the wallet keys or the plaintext wallet.
 * - The wallet keys come from the SaltedPassword and the salt of the latest successful login,
 *   sign-up or password change (or `updateDerivedSecrets`), so every device derives the same keys.
 * - A remote wallet is adopted only if its hmac verifies under this client's key, it decrypts, and
 *   its sequence is not older than the last one synced (no rollback); otherwise nothing changes.
 * - The merge base is the last wallet this client synced (got or pushed). `updateRemoteWallet`
 *   never changes the local wallet; a conflict leaves it as it was.
 * - `changePassword` refuses while the local wallet differs from the last synced one, and commits
 *   the new secrets locally only after the server accepted the change.
 *
 * The caller owns the connection behind `openRoot`; `close()` releases what this client holds.
 *
 * Tests: test/services/wallet/wallet-client.test.ts, wallet-story.test.ts
 */
import { randomBytes } from "node:crypto";
import { ErrorCode, ParallaxError, toParallaxError } from "../../errors.js";
import { loginWithPassword, makeVerifier, nodeKdf } from "../../login/client-login.js";
import { type Kdf, memoizeKdf, readKdf } from "../../login/index.js";
import type { KdfParams } from "../../store/index.js";
import {
  type Identity,
  type PendingApproval,
  type Root,
  SignUpOutcome_Which,
} from "../../wire/gen/broker.js";
import {
  type MaybeWallet$Shape,
  MaybeWallet_Which,
  PasswordChangeOutcome_Which,
  UpdateOutcome_Which,
  type WalletPerspective,
  type WalletState,
  WalletWatcher,
} from "../../wire/gen/wallet.js";
import {
  decryptWallet,
  deriveWalletKeys,
  encryptWallet,
  verifyWalletHmac,
  type WalletKeys,
  walletHmac,
} from "./wallet-crypto.js";
import {
  type ConflictResolver,
  decodeWallet,
  emptyWallet,
  encodeWallet,
  localWins,
  mergeWallets,
  type Wallet,
  walletsEqual,
  withPreference,
} from "./wallet-merge.js";
import { WALLET_OWNER } from "./wallet-keys.js";

/** The password KDF (argon2id by default); tests may pass a faster one. */
/** The password KDF the client derives with (`Kdf`; the name stays for existing callers). */
export type WalletKdf = Kdf;

/** A wallet state as the server holds it: nothing in it is readable without the keys. */
export interface WalletStateView {
  readonly sequence: number;
  readonly encryptedWallet: Uint8Array;
  readonly hmac: Uint8Array;
}

export type WalletEvent =
  /** Someone (this client included) committed `sequence`; `behind` if this client has not synced it. */
  | { readonly type: "walletUpdated"; readonly sequence: number; readonly behind: boolean }
  /** This client answered notifications too slowly and missed some: get the wallet again. */
  | { readonly type: "notificationsDropped"; readonly reason: string; readonly latestSequence: number }
  /** The attachment ended (password changed, logout, revoked): no more notifications until `login()`. */
  | { readonly type: "revoked"; readonly reason: string };

/**
 * Hears a WalletEvent. A listener that returns a promise holds the server's notification
 * unanswered until it settles: a slow listener gets `notificationsDropped` instead of a queue.
 */
export type WalletListener = (event: WalletEvent) => void | Promise<void>;

export interface WalletClientOptions {
  /** The account's name (the seed's email). */
  readonly username: string;
  /** The root password. It never leaves this process. */
  readonly password: string;
  /** The Root of a connection to the broker; asked once, and again after a disconnect. */
  readonly openRoot: () => Promise<Root>;
  /** Names this client in its messages ("c1"). Default: the username. */
  readonly name?: string;
  /** Receives the seed-style progress messages ("Generating keys...", "Synced walletState:", ...). */
  readonly log?: (line: string) => void;
  /** Default: the native argon2id KDF. */
  readonly kdf?: WalletKdf;
  /** Parameters for new verifiers (sign-up, password change). Default: the library's default. */
  readonly kdfParams?: KdfParams;
  /** Decides keys changed on both sides. Default `localWins`: the user's latest intent on this device. */
  readonly resolveConflict?: ConflictResolver;
}

export type GetRemoteResult = {
  readonly status: "success";
  /** The server's state, now this client's synced state; null when the server holds no wallet. */
  readonly state: WalletStateView | null;
  /**
   * `none`: no wallet on the server; `taken`: the remote wallet became the local one (no local
   * changes); `merged`: local changes were merged onto it (push them with `updateRemoteWallet`).
   */
  readonly action: "none" | "taken" | "merged";
  /** Keys changed on both sides, decided by the conflict resolver. */
  readonly conflicts: readonly string[];
};

export const OUT_OF_DATE = "Submitted wallet is out of date";
export const LOCAL_CHANGES = "Local changes found. Update remote wallet before changing password.";

export type UpdateRemoteResult =
  | { readonly status: "success"; readonly state: WalletStateView }
  /** The server holds a newer wallet (`latest`): get it, merge, push again. The local wallet is unchanged. */
  | {
      readonly status: "failure";
      readonly reason: typeof OUT_OF_DATE;
      readonly latest: WalletStateView | null;
    };

export type ChangePasswordResult =
  /** `state` is the wallet re-encrypted under the new keys, or null when the server held none. */
  | { readonly status: "success"; readonly state: WalletStateView | null }
  /** Local changes to push first, or the server's wallet moved on meanwhile (get and merge first). */
  | { readonly status: "failure"; readonly reason: typeof LOCAL_CHANGES | typeof OUT_OF_DATE };

interface Synced extends WalletStateView {
  /** The plaintext of this state: the merge base. */
  readonly wallet: Wallet;
}

interface WatcherHandle {
  active: boolean;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** `WalletState(sequence=3, encrypted_wallet='AbCd…')`, the seed's way of showing a state. */
export function formatWalletState(state: WalletStateView, chars = 24): string {
  const b64 = Buffer.from(state.encryptedWallet).toString("base64");
  const shown = b64.length > chars ? `${b64.slice(0, chars)}…` : b64;
  return `WalletState(sequence=${state.sequence}, encrypted_wallet='${shown}')`;
}

function view(s: WalletStateView): WalletStateView {
  return { sequence: s.sequence, encryptedWallet: s.encryptedWallet.slice(), hmac: s.hmac.slice() };
}

function readState(s: WalletState): WalletStateView {
  const sequence = s.sequence;
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `the server sent a wallet sequence out of range: ${sequence}`,
    );
  }
  return { sequence: Number(sequence), encryptedWallet: s.encryptedWallet.slice(), hmac: s.hmac.slice() };
}

export class WalletClient {
  readonly username: string;
  readonly name: string;
  readonly #openRoot: () => Promise<Root>;
  readonly #log: (line: string) => void;
  readonly #innerKdf: WalletKdf;
  readonly #kdfParams: KdfParams | undefined;
  readonly #resolve: ConflictResolver;
  readonly #listeners = new Set<WalletListener>();
  /** Remembers the last derivation, so a login right after a derivation does not run argon2 again. */
  readonly #kdf: WalletKdf;

  #password: string;
  #salt: Uint8Array | undefined;
  #keys: WalletKeys | undefined;
  #root: Root | undefined;
  #identity: Identity | undefined;
  #perspective: WalletPerspective | undefined;
  #watcher: WatcherHandle | undefined;
  #local: Wallet | undefined;
  #synced: Synced | undefined;
  #latestNotified = 0;
  #closed = false;

  constructor(options: WalletClientOptions) {
    this.username = options.username;
    this.name = options.name ?? options.username;
    this.#password = options.password;
    this.#openRoot = options.openRoot;
    this.#log = options.log ?? (() => {});
    this.#innerKdf = options.kdf ?? nodeKdf();
    this.#kdfParams = options.kdfParams;
    this.#resolve = options.resolveConflict ?? localWins;
    // Login and key derivation ask for the same SaltedPassword: derive it once.
    this.#kdf = memoizeKdf(this.#innerKdf, 1);
  }

  // --- state ----------------------------------------------------------------------------------

  /** The hex of the salt the keys were derived with (the seed's "salt seed"); undefined before any. */
  get saltSeed(): string | undefined {
    return this.#salt === undefined ? undefined : hex(this.#salt);
  }

  /** The sequence of the last wallet synced (0: none yet). */
  get sequence(): number {
    return this.#synced?.sequence ?? 0;
  }

  /** The last wallet state synced with the server. */
  get syncedState(): WalletStateView | undefined {
    return this.#synced === undefined ? undefined : view(this.#synced);
  }

  /** The highest sequence the server announced to this client's watcher. */
  get latestNotified(): number {
    return this.#latestNotified;
  }

  /** Whether a login is attached (its calls may still fail with REVOKED once the password changed). */
  get loggedIn(): boolean {
    return this.#perspective !== undefined;
  }

  /** Whether the local wallet differs from the last one synced (unpushed changes). */
  hasLocalChanges(): boolean {
    if (this.#local === undefined) return false;
    return !walletsEqual(this.#local, this.#synced?.wallet ?? emptyWallet());
  }

  // --- account --------------------------------------------------------------------------------

  /**
   * Signs the account up: a verifier with a new random salt (the "salt seed"), from which this
   * client also derives its wallet keys. Answers the PendingApproval (the caller's to hold or
   * dispose) when the server signs up by approval, else undefined.
   */
  async register(): Promise<PendingApproval | undefined> {
    const root = await this.#rootStub();
    this.#log("Generating keys...");
    const { verifier, saltedPassword } = await makeVerifier(this.#password, this.#verifierOptions());
    this.#log("Done generating keys");
    let outcome: Awaited<ReturnType<Root["signUp"]>>["outcome"];
    try {
      outcome = (await root.signUp({ username: this.username, verifier })).outcome;
    } catch (err) {
      throw this.#failed("Failed to register", err);
    }
    this.#setSecrets(saltedPassword, verifier.salt);
    if (outcome.which() === SignUpOutcome_Which.IDENTITY) {
      outcome.identity.dispose();
      this.#log("Registered");
      return undefined;
    }
    this.#log("Registered; the sign-up waits for an operator's approval");
    return outcome.pending;
  }

  /**
   * Asks the server for the account's current salt and derives the keys from it and the local
   * password (needed after another device changed the password). An unknown account gets a fake
   * salt that no login accepts, exactly as a wrong password would.
   */
  async updateDerivedSecrets(): Promise<void> {
    const root = await this.#rootStub();
    this.#log("Generating keys...");
    let salt: Uint8Array;
    let params: KdfParams;
    try {
      const call = root.login({
        username: this.username,
        clientNonce: new Uint8Array(randomBytes(32)),
      });
      try {
        const start = await call;
        salt = start.salt.slice();
        params = readKdf(start.kdf);
      } finally {
        // Only the salt is wanted: the challenger is released unanswered, which frees it at once.
        call.dispose();
      }
    } catch (err) {
      throw this.#failed("Failed to get the salt seed", err);
    }
    const saltedPassword = await this.#kdf.derive(this.#password, salt, params);
    this.#setSecrets(saltedPassword, salt);
    this.#log("Done generating keys");
  }

  /** Replaces the local password (after another device changed it) and derives the keys again. */
  async setLocalPassword(password: string): Promise<void> {
    this.#password = password;
    await this.updateDerivedSecrets();
  }

  /**
   * Logs in with the password and attaches ("wallet", "owner") with this client's watcher; the
   * keys are derived from the salt the server answered. Fails with PARALLAX_ERR_AUTH_FAILED for a
   * wrong password (after another device changed it: `setLocalPassword`).
   */
  async login(): Promise<void> {
    this.#checkOpen();
    const root = await this.#rootStub();
    let login: Awaited<ReturnType<typeof loginWithPassword>>;
    try {
      login = await loginWithPassword(root, this.username, this.#password, { kdf: this.#kdf });
    } catch (err) {
      const e = toParallaxError(err);
      throw this.#failed(
        "Failed to log in",
        e,
        e.code === ErrorCode.AUTH_FAILED
          ? " Has the password been changed on another device? Update this client's password (setLocalPassword())."
          : "",
      );
    }
    const handle: WatcherHandle = { active: true };
    const watcher = this.#makeWatcher(handle);
    let perspective: WalletPerspective;
    try {
      const res = await login.identity.attach({
        service: WALLET_OWNER.service,
        perspective: WALLET_OWNER.perspective,
        client: watcher,
      });
      const generic = res.perspective;
      perspective = generic.castAs(WALLET_OWNER.Ctor);
      generic.dispose();
    } catch (err) {
      login.identity.dispose();
      throw this.#failed("Failed to attach the wallet", err);
    } finally {
      watcher.dispose();
    }
    this.#setSecrets(login.saltedPassword, login.salt);
    this.#release(true);
    this.#identity = login.identity;
    this.#perspective = perspective;
    this.#watcher = handle;
    this.#log(`Logged in as ${this.username}: wallet/owner attached`);
  }

  /**
   * Changes the root password: a new verifier (new salt), the synced wallet re-encrypted under the
   * new keys at sequence + 1 (none when the server holds none), in one call. Refused while there
   * are local changes. Every session of the user ends with it, this one included; unless
   * `relogin: false`, the client then logs in again with the new password.
   */
  async changePassword(
    newPassword: string,
    options: { relogin?: boolean } = {},
  ): Promise<ChangePasswordResult> {
    const perspective = this.#needPerspective();
    if (this.hasLocalChanges()) {
      this.#log(LOCAL_CHANGES);
      return { status: "failure", reason: LOCAL_CHANGES };
    }
    this.#log("Generating keys...");
    const { verifier, saltedPassword } = await makeVerifier(newPassword, this.#verifierOptions());
    const keys = deriveWalletKeys(saltedPassword, verifier.salt);
    this.#log("Done generating keys");
    const synced = this.#synced;
    let sent: Synced | undefined;
    let wallet: MaybeWallet$Shape = { none: null };
    if (synced !== undefined) {
      sent = this.#seal(keys, synced.sequence + 1, synced.wallet);
      wallet = {
        state: { sequence: BigInt(sent.sequence), encryptedWallet: sent.encryptedWallet, hmac: sent.hmac },
      };
    }
    let stored: MaybeWallet_Which;
    try {
      const outcome = (await perspective.changePassword({ newVerifier: verifier, wallet })).outcome;
      if (outcome.which() === PasswordChangeOutcome_Which.CONFLICT) {
        this.#log(OUT_OF_DATE);
        return { status: "failure", reason: OUT_OF_DATE };
      }
      stored = outcome.changed.which();
    } catch (err) {
      throw this.#failed("Failed to change the password", err);
    }
    if ((stored === MaybeWallet_Which.STATE) !== (sent !== undefined)) {
      throw new ParallaxError(
        ErrorCode.FAILED,
        "the server answered a password change with the wrong wallet",
      );
    }
    this.#password = newPassword;
    this.#setSecrets(saltedPassword, verifier.salt);
    this.#synced = sent;
    if (sent !== undefined) {
      this.#local = sent.wallet;
      this.#log("Successfully updated password and wallet state on server");
      this.#log("Synced walletState:");
      this.#log(formatWalletState(sent));
    } else {
      this.#log("Successfully updated password on server (it holds no wallet yet)");
    }
    if (options.relogin !== false) {
      this.#release(false);
      await this.login();
    }
    return { status: "success", state: sent === undefined ? null : view(sent) };
  }

  // --- the wallet -----------------------------------------------------------------------------

  /** Starts an empty local wallet (before the first sync of a new account or device). */
  initWalletState(): void {
    this.#local = emptyWallet();
  }

  /** Sets a preference in the local wallet; answers `{ [key]: value }` as the seed does. */
  setPreference(key: string, value: string): Record<string, string> {
    this.#local = withPreference(this.#needLocal(), key, value);
    return Object.fromEntries([[key, value]]);
  }

  /**
   * The local wallet's preferences: all of them, or exactly `keys` ("" for one not set, as the
   * seed's client shows `{'animal': '', 'car': ''}`).
   */
  getPreferences(keys?: readonly string[]): Record<string, string> {
    const prefs = this.#needLocal().preferences;
    if (keys === undefined) return Object.fromEntries(Object.entries(prefs));
    return Object.fromEntries(keys.map((k) => [k, Object.hasOwn(prefs, k) ? (prefs[k] as string) : ""]));
  }

  /**
   * Gets the server's wallet, checks its hmac, decrypts it and merges the local changes onto it
   * (base: the last wallet synced). Fails (nothing changed) with PARALLAX_ERR_BAD_ARGUMENT if the
   * hmac or decryption fails or the server offers an older wallet than the last one synced, and with
   * PARALLAX_ERR_REVOKED once the password changed.
   */
  async getRemoteWallet(): Promise<GetRemoteResult> {
    const perspective = this.#needPerspective();
    let state: WalletStateView | null;
    try {
      const maybe = (await perspective.get()).wallet;
      state = maybe.which() === MaybeWallet_Which.STATE ? readState(maybe.state) : null;
    } catch (err) {
      throw this.#failed("Failed to get remote wallet", err);
    }
    if (state === null) {
      this.#log("The server holds no wallet yet.");
      return { status: "success", state: null, action: "none", conflicts: [] };
    }
    let remote: Wallet;
    try {
      remote = this.#open(state);
    } catch (err) {
      throw this.#failed("Failed to get remote wallet", err);
    }
    const base = this.#synced?.wallet ?? emptyWallet();
    const local = this.#local ?? base;
    let action: "taken" | "merged" = "taken";
    let merged: Wallet = remote;
    let conflicts: readonly string[] = [];
    if (!walletsEqual(local, base)) {
      this.#log("Merging local changes with remote changes to create latest walletState.");
      const m = mergeWallets(base, local, remote, this.#resolve);
      merged = m.wallet;
      conflicts = m.conflicts;
      action = "merged";
    } else if (this.#synced !== undefined) {
      this.#log("Nothing to merge. Taking remote walletState as latest walletState.");
    }
    this.#synced = { ...state, wallet: remote };
    this.#local = merged;
    this.#log("Got latest walletState:");
    this.#log(formatWalletState(state));
    return { status: "success", state: view(state), action, conflicts };
  }

  /**
   * Pushes the local wallet at the synced sequence + 1. On a conflict the local wallet stays as it
   * is and the result carries the server's latest state: `getRemoteWallet`, then push again.
   */
  async updateRemoteWallet(): Promise<UpdateRemoteResult> {
    const perspective = this.#needPerspective();
    const local = this.#needLocal();
    const sent = this.#seal(this.#needKeys(), this.sequence + 1, local);
    let outcome: Awaited<ReturnType<WalletPerspective["update"]>>["outcome"];
    let latest: WalletStateView | null = null;
    try {
      outcome = (
        await perspective.update({
          state: { sequence: BigInt(sent.sequence), encryptedWallet: sent.encryptedWallet, hmac: sent.hmac },
        })
      ).outcome;
      if (outcome.which() === UpdateOutcome_Which.CONFLICT) {
        const s = readState(outcome.conflict);
        latest = s.sequence === 0 ? null : s;
      }
    } catch (err) {
      throw this.#failed("Failed to update remote wallet", err);
    }
    if (outcome.which() === UpdateOutcome_Which.ACCEPTED) {
      this.#synced = sent;
      this.#log("Successfully updated wallet state on server");
      this.#log("Synced walletState:");
      this.#log(formatWalletState(sent));
      return { status: "success", state: view(sent) };
    }
    this.#log(`${OUT_OF_DATE}.`);
    this.#log("Could not update. Need to get new wallet and merge");
    return { status: "failure", reason: OUT_OF_DATE, latest };
  }

  // --- notifications --------------------------------------------------------------------------

  /**
   * Hears the watcher's events (of this login and the next ones); answers the unsubscriber. The
   * watcher is attached at every login whether anyone listens or not; its events are logged only
   * while someone does (the seed's `start_websocket`).
   */
  watch(listener: WalletListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Detaches the wallet and drops every capability this client holds; the connection stays the caller's. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const perspective = this.#perspective;
    if (this.#watcher !== undefined) this.#watcher.active = false;
    if (perspective !== undefined) {
      await Promise.resolve(perspective.detach()).then(
        () => {},
        () => {},
      );
    }
    this.#release(false);
    this.#root?.dispose();
    this.#root = undefined;
    this.#listeners.clear();
  }

  // --- internals ------------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new ParallaxError(ErrorCode.FAILED, `wallet client ${this.name} is closed`);
  }

  async #rootStub(): Promise<Root> {
    this.#checkOpen();
    this.#root ??= await this.#openRoot();
    return this.#root;
  }

  #verifierOptions(): { kdf: WalletKdf; params?: KdfParams } {
    return this.#kdfParams === undefined ? { kdf: this.#kdf } : { kdf: this.#kdf, params: this.#kdfParams };
  }

  #setSecrets(saltedPassword: Uint8Array, salt: Uint8Array): void {
    this.#keys = deriveWalletKeys(saltedPassword, salt);
    this.#salt = salt.slice();
  }

  #needPerspective(): WalletPerspective {
    this.#checkOpen();
    if (this.#perspective === undefined) {
      throw new ParallaxError(ErrorCode.FAILED, `${this.name} is not logged in: call login() first`);
    }
    return this.#perspective;
  }

  #needKeys(): WalletKeys {
    if (this.#keys === undefined) {
      throw new ParallaxError(ErrorCode.FAILED, `${this.name} has no wallet keys: log in first`);
    }
    return this.#keys;
  }

  #needLocal(): Wallet {
    if (this.#local === undefined) {
      throw new ParallaxError(
        ErrorCode.FAILED,
        `${this.name} has no local wallet: call initWalletState() or getRemoteWallet() first`,
      );
    }
    return this.#local;
  }

  /** Encrypts `wallet` and signs it for `sequence`. */
  #seal(keys: WalletKeys, sequence: number, wallet: Wallet): Synced {
    const encryptedWallet = encryptWallet(keys.encryptionKey, encodeWallet(wallet));
    return { sequence, encryptedWallet, hmac: walletHmac(keys.hmacKey, sequence, encryptedWallet), wallet };
  }

  /** Verifies and decrypts a remote state; throws BAD_ARGUMENT (changing nothing) if it is not acceptable. */
  #open(state: WalletStateView): Wallet {
    const keys = this.#needKeys();
    if (this.#synced !== undefined && state.sequence < this.#synced.sequence) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `the server offers wallet ${state.sequence}, older than ${this.#synced.sequence} synced already: refusing a rollback`,
      );
    }
    if (!verifyWalletHmac(keys.hmacKey, state.sequence, state.encryptedWallet, state.hmac)) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `the wallet's hmac does not verify (sequence ${state.sequence}): wrong password or tampered`,
      );
    }
    return decodeWallet(decryptWallet(keys.encryptionKey, state.encryptedWallet));
  }

  /** Logs `what` with the error and answers it as a ParallaxError to throw. */
  #failed(what: string, err: unknown, hint = ""): ParallaxError {
    const e = toParallaxError(err);
    if (e.kind === "disconnected") {
      // The connection is gone: the next login asks for a new Root.
      this.#root?.dispose();
      this.#root = undefined;
    }
    this.#log(`${what}: ${e.code}: ${e.message}${/[.!?]$/.test(e.message) ? "" : "."}${hint}`);
    return e;
  }

  /** Drops the current login; `detach` ends a live attachment first (its watcher goes quiet). */
  #release(detach: boolean): void {
    const perspective = this.#perspective;
    if (this.#watcher !== undefined && detach) this.#watcher.active = false;
    if (perspective !== undefined && detach) {
      Promise.resolve(perspective.detach()).then(
        () => perspective.dispose(),
        () => perspective.dispose(),
      );
    } else {
      perspective?.dispose();
    }
    this.#identity?.dispose();
    this.#perspective = undefined;
    this.#identity = undefined;
    this.#watcher = undefined;
  }

  #makeWatcher(handle: WatcherHandle): WalletWatcher {
    return WalletWatcher.server({
      walletUpdated: (p) => {
        const sequence = Number(p.sequence);
        if (!handle.active) return;
        this.#latestNotified = Math.max(this.#latestNotified, sequence);
        const behind = sequence > this.sequence;
        this.#logWatched(
          `${this.name} got notified of a wallet update, sequence=${sequence}. ` +
            (behind
              ? "This client is behind: get the latest from the server."
              : "This client is up to date."),
        );
        return this.#emit({ type: "walletUpdated", sequence, behind });
      },
      notificationsDropped: (p) => {
        const latestSequence = Number(p.latestSequence);
        if (!handle.active) return;
        this.#latestNotified = Math.max(this.#latestNotified, latestSequence);
        this.#logWatched(`${this.name} missed notifications up to sequence=${latestSequence}: ${p.reason}`);
        return this.#emit({ type: "notificationsDropped", reason: p.reason, latestSequence });
      },
      revoked: (p) => {
        const reason = p.reason;
        if (!handle.active) return;
        handle.active = false;
        this.#logWatched(`${this.name} stopped getting notifications: ${reason}`);
        return this.#emit({ type: "revoked", reason });
      },
    });
  }

  /** Notifications are logged only while someone watches (the seed's `start_websocket`). */
  #logWatched(line: string): void {
    if (this.#listeners.size > 0) this.#log(line);
  }

  async #emit(event: WalletEvent): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const listener of [...this.#listeners]) {
      try {
        const r = listener(event);
        if (r instanceof Promise) waits.push(r);
      } catch {
        // a listener's failure is not the server's
      }
    }
    await Promise.allSettled(waits);
  }
}
