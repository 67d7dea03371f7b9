/**
 * Wallet sync (seed 000) on the service kit: `attach(identity, WALLET_OWNER, watcher)` hands out
 * a WalletPerspective of the user (one per attachment); the server keeps only what the client
 * encrypted.
 *
 * Invariants:
 * - Every write is made under the caller's login epoch, checked inside the store's transaction:
 *   an update from a login older than a password change never lands after it.
 * - Notifications: every committed update is published on the bus (`WALLET_UPDATED`) and calls
 *   `walletUpdated(sequence)` on every attached watcher of the user, in sequence order, through
 *   the user's bounded Notifier: a watcher `maxNotificationsInFlight` behind gets the rest
 *   dropped and, once it answers, one `notificationsDropped(reason, latest)`.
 * - A watcher goes with its own attachment, and is told why (`revoked(reason)`) unless its
 *   connection closed.
 *
 * Tests: test/services/wallet/wallet-service.test.ts
 */
import type { CallContext, Capability } from "../../caps/index.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  auditEntry,
  type DetachReason,
  type EventBus,
  grantOf,
  type IdentityView,
  Notifier,
  PerUserService,
  readVerifier,
  type ServiceHost,
  type ServiceModule,
  topic,
  UserPerspective,
} from "../../login/index.js";
import { WALLET_STORE, type WalletInput, type WalletRecord, type WalletStore } from "../../store/index.js";
import {
  type MaybeWallet$Shape,
  MaybeWallet_Which,
  WalletPerspective,
  type WalletPerspective$Server,
  type WalletPerspective_changePassword_Params,
  type WalletPerspective_update_Params,
  type WalletState,
  WalletWatcher,
} from "../../wire/gen/wallet.js";
import { WALLET_OWNER } from "./wallet-keys.js";

export interface WalletServiceOptions {
  /** Largest encrypted wallet accepted, in bytes. Default 1 MiB. */
  readonly maxWalletBytes?: number;
  /** Largest hmac accepted, in bytes. Default 64. */
  readonly maxHmacBytes?: number;
  /** Unanswered notifications one watcher may have before the rest are dropped. Default 32. */
  readonly maxNotificationsInFlight?: number;
}

/** A committed wallet update (JSON-compatible, so it can cross nodes). */
export interface WalletUpdated {
  readonly identityId: number;
  readonly sequence: number;
}

export const WALLET_UPDATED = topic<WalletUpdated>("wallet.updated");

/** Wallet sync as a module for `startBroker({ services: [wallet()] })`: needs `WALLET_STORE`. */
export function wallet(options: WalletServiceOptions = {}): ServiceModule<WalletService, WalletStore> {
  return {
    name: WALLET_OWNER.service,
    defaultKeyring: [WALLET_OWNER],
    store: WALLET_STORE,
    create: (ctx) => new WalletService({ store: ctx.repository, host: ctx.host, bus: ctx.bus }, options),
  };
}

/** What one user's attachments share: the notifier of their watchers. */
interface WalletUser {
  readonly watchers: Notifier<WalletWatcher, number>;
}

export class WalletService extends PerUserService<WalletUser, WalletOwnerPerspective> {
  readonly name = WALLET_OWNER.service;
  readonly store: WalletStore;
  readonly host: ServiceHost;
  readonly maxWalletBytes: number;
  readonly maxHmacBytes: number;
  readonly maxNotificationsInFlight: number;
  readonly #bus: EventBus;
  readonly #unsubscribe: () => void;

  constructor(
    context: { readonly store: WalletStore; readonly host: ServiceHost; readonly bus: EventBus },
    options: WalletServiceOptions = {},
  ) {
    super();
    this.store = context.store;
    this.host = context.host;
    this.#bus = context.bus;
    this.maxWalletBytes = options.maxWalletBytes ?? 1024 * 1024;
    this.maxHmacBytes = options.maxHmacBytes ?? 64;
    this.maxNotificationsInFlight = options.maxNotificationsInFlight ?? 32;
    this.#unsubscribe = this.#bus.subscribe(WALLET_UPDATED, (e) =>
      this.userOf(e.identityId)?.watchers.notify(e.sequence),
    );
  }

  protected newPerspective(name: string, identity: IdentityView): WalletOwnerPerspective | undefined {
    return name === WALLET_OWNER.perspective ? new WalletOwnerPerspective(this, identity) : undefined;
  }

  protected newUser(): WalletUser {
    const max = this.maxNotificationsInFlight;
    return {
      watchers: new Notifier<WalletWatcher, number>({
        maxInFlight: max,
        // One watcher per attachment: the `client` given to attach.
        maxPerOwner: 1,
        deliver: (w, sequence) => w.walletUpdated({ sequence: BigInt(sequence) }),
        dropped: (w, { last }) =>
          w.notificationsDropped({
            reason: `you fell ${max} notifications behind; updates up to ${last} were not sent one by one: re-sync with get()`,
            latestSequence: BigInt(last),
          }),
        closed: (w, reason) => w.revoked({ reason: reason.message }),
      }),
    };
  }

  protected override forgetUser(user: WalletUser): void {
    user.watchers.clear();
  }

  /** @internal Publishes a committed update; settles once this process's watchers were told. */
  published(identityId: number, sequence: number): Promise<void> {
    return this.#bus.publish(WALLET_UPDATED, { identityId, sequence });
  }

  /** Watchers attached for an identity (for tests and stats). */
  watchersOf(identityId: number): number {
    return this.userOf(identityId)?.watchers.size ?? 0;
  }

  close(): void {
    this.#unsubscribe();
  }
}

/** One attachment of ("wallet", "owner"): the user's wallet, from one device. */
export class WalletOwnerPerspective extends UserPerspective<WalletUser> implements WalletPerspective$Server {
  constructor(
    readonly wallets: WalletService,
    identity: IdentityView,
  ) {
    super(wallets, identity);
  }

  capability(): WalletPerspective {
    return WalletPerspective.server(this.serve<WalletPerspective$Server>());
  }

  protected override onAttached(client: Capability | null): void {
    if (client !== null) this.user.watchers.add(this, client.castAs(WalletWatcher));
  }

  protected override onDetached(reason: DetachReason): void {
    this.user.watchers.removeOwner(this, reason);
  }

  get #id(): number {
    return this.identity.id;
  }

  async get(_params: unknown, _ctx: CallContext) {
    const wallet = await this.wallets.store.getWallet(this.#id);
    return { wallet: maybe(wallet) };
  }

  async update(params: WalletPerspective_update_Params, ctx: CallContext) {
    const { epoch } = this.caller(ctx);
    const input = this.#readState(params.state);
    const result = await this.wallets.store.updateWallet(this.#id, epoch, input);
    if (result.kind === "revoked") {
      throw new ParallaxError(ErrorCode.REVOKED, "the credentials changed since this wallet was attached");
    }
    if (result.kind === "conflict") return { outcome: { conflict: shape(result.latest) } };
    // Watchers hear of the commit before the writer's Return.
    await this.wallets.published(this.#id, result.wallet.sequence);
    return { outcome: { accepted: shape(result.wallet) } };
  }

  async changePassword(params: WalletPerspective_changePassword_Params, ctx: CallContext) {
    const who = this.caller(ctx);
    if (who.authMethod !== "password" && who.authMethod !== "signUp") {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "changing the password needs a password login");
    }
    const verifier = readVerifier(params.newVerifier);
    const wallet = params.wallet;
    const input = wallet.which() === MaybeWallet_Which.STATE ? this.#readState(wallet.state) : null;
    const grant = grantOf(ctx);
    const result = await this.wallets.store.changePasswordWithWallet(
      this.#id,
      who.epoch,
      verifier,
      input,
      grant === undefined ? undefined : auditEntry(grant, "credential", "password changed with the wallet"),
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
        // Watchers hear of the re-encrypted wallet before they are told the attachment ended.
        if (result.wallet !== null && input !== null)
          await this.wallets.published(this.#id, result.wallet.sequence);
        // Every login of the user ends now, this one included; watchers are told why.
        this.wallets.host.revokeIdentity(this.#id, result.epoch, "the password was changed");
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
    if (encryptedWallet.length > this.wallets.maxWalletBytes) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `the wallet is ${encryptedWallet.length} bytes; at most ${this.wallets.maxWalletBytes} are accepted`,
      );
    }
    if (hmac.length > this.wallets.maxHmacBytes) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `the hmac is ${hmac.length} bytes; at most ${this.wallets.maxHmacBytes} are accepted`,
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
