/**
 * Wallet sync (seed 000) as a Perspective service: `attach("wallet", "owner", watcher)` hands out
 * the user's WalletPerspective; the server keeps only what the client encrypted.
 *
 * Invariants:
 * - Every write is made under the caller's login epoch, checked inside the store's transaction:
 *   an update from a login older than a password change never lands after it.
 * - Notifications: every committed update calls `walletUpdated(sequence)` on every attached
 *   watcher of the user, in sequence order. A watcher with `maxNotificationsInFlight`
 *   unanswered notifications gets the rest dropped and, once it answers, one
 *   `notificationsDropped(reason, latest)`; nothing queues without bound.
 * - A watcher is dropped (and told why when it can be) when its attachment ends.
 */
import type { CallContext, Capability } from "../../caps/index.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  type Broker,
  callerIdentity,
  type IdentityView,
  Perspective,
  readVerifier,
  type Service,
} from "../../login/index.js";
import type { WalletInput, WalletRecord, WalletStore } from "../../store/index.js";
import {
  type MaybeWallet$Shape,
  MaybeWallet_Which,
  type WalletPerspective$Server,
  WalletPerspective as WalletPerspectiveStub,
  type WalletPerspective_changePassword_Params,
  type WalletPerspective_update_Params,
  type WalletState,
  WalletWatcher,
} from "../../wire/gen/wallet.js";

export interface WalletServiceOptions {
  readonly store: WalletStore;
  /** Carries revocation after a password change to every session. */
  readonly broker: Broker;
  /** Largest encrypted wallet accepted, in bytes. Default 1 MiB. */
  readonly maxWalletBytes?: number;
  /** Largest hmac accepted, in bytes. Default 64. */
  readonly maxHmacBytes?: number;
  /** Unanswered notifications one watcher may have before the rest are dropped. Default 32. */
  readonly maxNotificationsInFlight?: number;
}

/** One attached client's notification channel. */
class Watcher {
  inFlight = 0;
  /** The newest sequence dropped while the watcher was behind; 0 when none. */
  droppedUpTo = 0;
  closed = false;

  constructor(
    readonly cap: WalletWatcher,
    readonly client: Capability,
    private readonly maxInFlight: number,
  ) {}

  notify(sequence: number): void {
    if (this.closed) return;
    if (this.inFlight >= this.maxInFlight) {
      this.droppedUpTo = sequence;
      return;
    }
    this.#send(this.cap.walletUpdated({ sequence: BigInt(sequence) }));
  }

  #send(call: PromiseLike<unknown> & { dispose?(): void }): void {
    this.inFlight++;
    Promise.resolve(call).then(
      () => this.#answered(),
      () => this.#answered(),
    );
  }

  #answered(): void {
    this.inFlight--;
    if (this.closed || this.droppedUpTo === 0 || this.inFlight > 0) return;
    const latest = this.droppedUpTo;
    this.droppedUpTo = 0;
    this.#send(
      this.cap.notificationsDropped({
        reason: `you fell ${this.maxInFlight} notifications behind; updates up to ${latest} were not sent one by one: re-sync with get()`,
        latestSequence: BigInt(latest),
      }),
    );
  }

  close(reason: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (reason !== undefined) this.cap.revoked({ reason }).then(undefined, () => {});
    this.cap.dispose();
  }
}

export class WalletService implements Service {
  readonly name = "wallet";
  readonly store: WalletStore;
  readonly broker: Broker;
  readonly maxWalletBytes: number;
  readonly maxHmacBytes: number;
  readonly maxNotificationsInFlight: number;
  readonly #perspectives = new Map<number, WalletOwner>();

  constructor(options: WalletServiceOptions) {
    this.store = options.store;
    this.broker = options.broker;
    this.maxWalletBytes = options.maxWalletBytes ?? 1024 * 1024;
    this.maxHmacBytes = options.maxHmacBytes ?? 64;
    this.maxNotificationsInFlight = options.maxNotificationsInFlight ?? 32;
  }

  getPerspectiveForIdentity(perspectiveName: string, identity: IdentityView): WalletOwner {
    if (perspectiveName !== "owner") {
      throw new ParallaxError(
        ErrorCode.NOT_FOUND,
        `the wallet service has no perspective "${perspectiveName}"`,
      );
    }
    if (identity.id < 0)
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "anonymous logins have no wallet");
    let p = this.#perspectives.get(identity.id);
    if (p === undefined) {
      p = new WalletOwner(this, identity.id);
      this.#perspectives.set(identity.id, p);
    }
    return p;
  }

  /** @internal Drops a user's perspective once nothing is attached to it. */
  forget(owner: WalletOwner): void {
    if (owner.attachments === 0 && this.#perspectives.get(owner.identityId) === owner) {
      this.#perspectives.delete(owner.identityId);
    }
  }

  /** A plain password change would leave the wallet encrypted under the old password. */
  async beforePasswordChange(identityId: number): Promise<void> {
    const wallet = await this.store.getWallet(identityId);
    if (wallet !== undefined) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "this account holds a wallet encrypted under the current password: change the password with " +
          "WalletPerspective.changePassword, which re-encrypts the wallet in the same transaction",
      );
    }
  }

  /** Watchers attached for an identity (for tests and stats). */
  watchersOf(identityId: number): number {
    return this.#perspectives.get(identityId)?.watchers.size ?? 0;
  }
}

/** The WalletPerspective of one user; shared by all of that user's attachments. */
export class WalletOwner extends Perspective implements WalletPerspective$Server {
  readonly watchers = new Map<Capability, Watcher>();
  /** Live attachments, with or without a watcher. */
  attachments = 0;

  constructor(
    private readonly service: WalletService,
    readonly identityId: number,
  ) {
    super();
  }

  capability(): WalletPerspectiveStub {
    return WalletPerspectiveStub.server(this);
  }

  override attached(client: Capability | null): Perspective {
    this.attachments++;
    if (client !== null) {
      const w = new Watcher(client.castAs(WalletWatcher), client, this.service.maxNotificationsInFlight);
      this.watchers.set(client, w);
    }
    return this;
  }

  override detached(client: Capability | null, _identity: IdentityView, reason: string): void {
    this.attachments--;
    if (client !== null) {
      const w = this.watchers.get(client);
      this.watchers.delete(client);
      w?.close(reason === "the connection closed" ? undefined : reason);
    }
    this.service.forget(this);
  }

  #notify(sequence: number): void {
    for (const w of this.watchers.values()) w.notify(sequence);
  }

  async get(_params: unknown, ctx: CallContext) {
    this.#caller(ctx);
    const wallet = await this.service.store.getWallet(this.identityId);
    return { wallet: maybe(wallet) };
  }

  /** The caller's login, which must be this wallet's owner (a perspective passed on stays theirs). */
  #caller(ctx: CallContext): IdentityView {
    const who = callerIdentity(ctx);
    if (who.id !== this.identityId) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "this wallet belongs to another user");
    }
    return who;
  }

  async update(params: WalletPerspective_update_Params, ctx: CallContext) {
    const { epoch } = this.#caller(ctx);
    const input = this.#readState(params.state);
    const result = await this.service.store.updateWallet(this.identityId, epoch, input);
    if (result.kind === "revoked") {
      throw new ParallaxError(ErrorCode.REVOKED, "the credentials changed since this wallet was attached");
    }
    if (result.kind === "conflict") return { outcome: { conflict: shape(result.latest) } };
    this.#notify(result.wallet.sequence);
    return { outcome: { accepted: shape(result.wallet) } };
  }

  async changePassword(params: WalletPerspective_changePassword_Params, ctx: CallContext) {
    const who = this.#caller(ctx);
    if (who.authMethod !== "password" && who.authMethod !== "signUp") {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "changing the password needs a password login");
    }
    const verifier = readVerifier(params.newVerifier);
    const wallet = params.wallet;
    const input = wallet.which() === MaybeWallet_Which.STATE ? this.#readState(wallet.state) : null;
    const result = await this.service.store.changePasswordWithWallet(
      this.identityId,
      who.epoch,
      verifier,
      input,
      {
        kind: "credential",
        identityId: this.identityId,
        username: who.name,
        remoteAddress: "",
        detail: "password changed with the wallet",
      },
    );
    switch (result.kind) {
      case "revoked":
        throw new ParallaxError(ErrorCode.REVOKED, "the credentials changed since this wallet was attached");
      case "wallet-mismatch":
        throw new ParallaxError(
          ErrorCode.BAD_ARGUMENT,
          result.latest === null
            ? "the server holds no wallet yet: change the password without one"
            : `the server holds a wallet (sequence ${result.latest.sequence}): send it re-encrypted with sequence ${result.latest.sequence + 1}`,
        );
      case "conflict":
        return { outcome: { conflict: maybe(result.latest ?? undefined) } };
      case "changed": {
        if (result.wallet !== null && input !== null) this.#notify(result.wallet.sequence);
        // Every session of the user ends now, this one included; watchers are told why.
        this.service.broker.revokeIdentity(this.identityId, result.epoch, "the password was changed");
        return { outcome: { changed: maybe(result.wallet ?? undefined) } };
      }
    }
  }

  #readState(s: WalletState): WalletInput {
    const sequence = s.sequence;
    if (sequence < 1n || sequence > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `sequence must be from 1 to 2^53 - 1, got ${sequence}`);
    }
    const encryptedWallet = s.encryptedWallet;
    const hmac = s.hmac;
    if (encryptedWallet.length > this.service.maxWalletBytes) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `the wallet is ${encryptedWallet.length} bytes; at most ${this.service.maxWalletBytes} are accepted`,
      );
    }
    if (hmac.length > this.service.maxHmacBytes) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `the hmac is ${hmac.length} bytes; at most ${this.service.maxHmacBytes} are accepted`,
      );
    }
    return { sequence: Number(sequence), encryptedWallet: encryptedWallet.slice(), hmac: hmac.slice() };
  }
}

function shape(w: WalletRecord | null): { sequence: bigint; encryptedWallet: Uint8Array; hmac: Uint8Array } {
  return w === null
    ? { sequence: 0n, encryptedWallet: new Uint8Array(0), hmac: new Uint8Array(0) }
    : { sequence: BigInt(w.sequence), encryptedWallet: w.encryptedWallet, hmac: w.hmac };
}

function maybe(w: WalletRecord | undefined): MaybeWallet$Shape {
  return w === undefined ? { none: null } : { state: shape(w) };
}
