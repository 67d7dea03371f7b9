/**
 * The Authorizer (PB's name; Twisted later split it into Portal and CredentialsChecker): finds
 * identities and checks credentials. It knows nothing of connections or capabilities; the login
 * layer turns what it answers into Identities.
 *
 * Invariants:
 * - A name that does not exist is answered in the same shape as one that does (a deterministic
 *   fake verifier), so the answers never tell whether a name exists.
 * - Secrets are compared only as hashes, in constant time.
 * - It may answer *pending*: sign-ups when the server requires approval, and device keys not yet
 *   registered to the user.
 *
 * Tests: test/login/login.test.ts, test/login/device-keys.test.ts
 */
import { ErrorCode, ParallaxError } from "../errors.js";
import type {
  ApiKeyRecord,
  BrokerStore,
  IdentityRecord,
  KeyringPair,
  PendingRecord,
  ResumeTokenRecord,
  StoredVerifier,
} from "../store/index.js";
import { checkPublicKey, verifyEd25519 } from "./ed25519.js";
import { checkKdfParams, checkSalt } from "./kdf.js";
import { fakeVerifier, serverSignature, verifyClientProof } from "./scram.js";
import { RateLimitedError } from "./login-throttle.js";
import { constantTimeEqual, hashSecret, hasSecretFormat, parseApiKey } from "./secrets.js";

export type SignUpMode = "closed" | "open" | "approval";

/** A password login in progress: what the client needs, and how to check its proof. */
export interface PasswordChallenge {
  readonly salt: Uint8Array;
  readonly kdf: StoredVerifier["kdf"];
  /** Undefined for an unknown name (then `verify` is always false). */
  readonly identity: IdentityRecord | undefined;
  verify(authMessage: Uint8Array, proof: Uint8Array): boolean;
  signature(authMessage: Uint8Array): Uint8Array;
}

export type SignUpResult = { readonly identity: IdentityRecord } | { readonly pending: PendingRecord };

export type ResumeOutcome =
  | { readonly kind: "rotated"; readonly identity: IdentityRecord; readonly token: ResumeTokenRecord }
  /** `token` is the spent one presented: its family is gone from the store. */
  | {
      readonly kind: "reused";
      readonly identity: IdentityRecord | undefined;
      readonly token: ResumeTokenRecord;
    };

export interface Authorizer {
  passwordChallenge(username: string): Promise<PasswordChallenge>;
  /** The identity owning `publicKey` if it is `username`'s; `known` tells whether the user exists. */
  keyOwner(
    username: string,
    publicKey: Uint8Array,
  ): Promise<{ identity: IdentityRecord | undefined; registered: boolean }>;
  verifyKeySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * The key's owner and the key (its keyring and URI permissions, as stored) if `key` is a live
   * API key at `now` of an unsuspended identity; else undefined.
   */
  checkApiKey(
    key: string,
    now: number,
  ): Promise<{ identity: IdentityRecord; apiKey: ApiKeyRecord } | undefined>;
  checkOtp(username: string, otp: string, now: number): Promise<IdentityRecord | undefined>;
  /**
   * Resumes with `token`: if it is live, replaces it by the token hashed `nextHash` (same family,
   * same expiry) and answers the identity; if it was rotated already (someone replays a copy),
   * revokes its whole family and answers `reused`; else undefined.
   */
  rotateResumeToken(token: string, nextHash: Uint8Array, now: number): Promise<ResumeOutcome | undefined>;
  signUp(username: string, verifier: StoredVerifier, remoteAddress: string): Promise<SignUpResult>;
  /**
   * Records a device key waiting for approval, bound to the identity the name belongs to now. An
   * unknown name's request is recorded the same way (so the answer never tells whether the name
   * exists) with no identity: it can never be approved, not even by the name's later owner. The
   * same key asking again gets its own request back; at most `maxPendingDevicesPerName` wait
   * per name, and beyond that the request is refused (RATE_LIMITED) — never answered with
   * another key's request.
   */
  requestDevice(
    identity: IdentityRecord | undefined,
    username: string,
    publicKey: Uint8Array,
    device: string,
    remoteAddress: string,
    /** Runs (and may throw to refuse) only before a new request is filed, not for a repeat. */
    admit?: () => void,
  ): Promise<PendingRecord>;
}

export interface StoreAuthorizerOptions {
  readonly signUp: SignUpMode;
  /** The keyring new users get. */
  readonly defaultKeyring: readonly KeyringPair[];
  /** How long a pending request waits before it expires. Default 7 days. */
  readonly pendingTtlMs?: number;
  /** Device-key requests that may wait per name. Default 5. */
  readonly maxPendingDevicesPerName?: number;
  readonly now?: () => number;
}

const MAX_NAME_CHARS = 64;

/**
 * A user name in its one stored form (NFKC); refuses empty, over-long, padded and control-character
 * names with PARALLAX_ERR_BAD_ARGUMENT.
 */
export function normalizeUsername(name: string): string {
  const n = name.normalize("NFKC");
  if (n.length === 0 || n.length > MAX_NAME_CHARS) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a user name has 1 to ${MAX_NAME_CHARS} characters`);
  }
  if (n.trim() !== n)
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a user name cannot start or end with spaces");
  // Control, format (zero-width, bidi), separator and unassigned characters let one name pass
  // for another.
  if (/[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u.test(n)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      "a user name cannot contain control, formatting or invisible characters",
    );
  }
  return n;
}

/** Checks a verifier a client sent (sign-up, password change) before it is stored. */
export function checkVerifier(v: StoredVerifier): void {
  checkKdfParams(v.kdf);
  checkSalt(v.salt);
  if (v.storedKey.length !== 32 || v.serverKey.length !== 32) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "storedKey and serverKey are 32 bytes each");
  }
}

/** The default Authorizer: everything it knows is in a BrokerStore. */
export class StoreAuthorizer implements Authorizer {
  readonly #now: () => number;
  readonly #pendingTtlMs: number;
  readonly #maxPendingDevices: number;

  constructor(
    private readonly store: BrokerStore,
    private readonly options: StoreAuthorizerOptions,
  ) {
    this.#now = options.now ?? Date.now;
    this.#pendingTtlMs = options.pendingTtlMs ?? 7 * 24 * 3600 * 1000;
    this.#maxPendingDevices = options.maxPendingDevicesPerName ?? 5;
  }

  async passwordChallenge(username: string): Promise<PasswordChallenge> {
    const identity = await this.store.findIdentityByName(username);
    const real = identity?.verifier ?? undefined;
    const verifier = real ?? fakeVerifier(await this.store.serverSecret(), username);
    return {
      salt: verifier.salt,
      kdf: verifier.kdf,
      identity: real === undefined ? undefined : identity,
      // An unknown name runs the same computation and always fails.
      verify: (authMessage, proof) => verifyClientProof(verifier, authMessage, proof) && real !== undefined,
      signature: (authMessage) => serverSignature(verifier, authMessage),
    };
  }

  async keyOwner(
    username: string,
    publicKey: Uint8Array,
  ): Promise<{ identity: IdentityRecord | undefined; registered: boolean }> {
    checkPublicKey(publicKey);
    const identity = await this.store.findIdentityByName(username);
    if (identity === undefined) return { identity: undefined, registered: false };
    const key = await this.store.findPublicKey(publicKey);
    return { identity, registered: key !== undefined && key.identityId === identity.id };
  }

  verifyKeySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    return verifyEd25519(publicKey, message, signature);
  }

  async checkApiKey(
    key: string,
    now: number,
  ): Promise<{ identity: IdentityRecord; apiKey: ApiKeyRecord } | undefined> {
    const parsed = parseApiKey(key);
    if (parsed === undefined) return undefined;
    const apiKey = await this.store.findApiKey(parsed.id);
    if (apiKey === undefined) return undefined;
    if (!constantTimeEqual(hashSecret(key), apiKey.secretHash)) return undefined;
    if (apiKey.expiresAt !== 0 && apiKey.expiresAt <= now) return undefined;
    const identity = await this.store.findIdentityById(apiKey.identityId);
    if (identity === undefined || identity.suspended) return undefined;
    return { identity, apiKey };
  }

  async checkOtp(username: string, otp: string, now: number): Promise<IdentityRecord | undefined> {
    const identity = await this.store.findIdentityByName(username);
    if (identity === undefined || identity.suspended) return undefined;
    return (await this.store.consumeOtp(identity.id, hashSecret(otp), now)) ? identity : undefined;
  }

  async rotateResumeToken(
    token: string,
    nextHash: Uint8Array,
    now: number,
  ): Promise<ResumeOutcome | undefined> {
    if (!hasSecretFormat("pxr", token)) return undefined;
    const rotated = await this.store.rotateResumeToken(hashSecret(token), nextHash, now);
    if (rotated === undefined) return undefined;
    const identity = await this.store.findIdentityById(rotated.token.identityId);
    if (rotated.kind === "reused") return { kind: "reused", identity, token: rotated.token };
    if (identity === undefined || identity.suspended || identity.epoch !== rotated.token.epoch)
      return undefined;
    return { kind: "rotated", identity, token: rotated.token };
  }

  async signUp(username: string, verifier: StoredVerifier, remoteAddress: string): Promise<SignUpResult> {
    checkVerifier(verifier);
    if (this.options.signUp === "closed") {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        "sign-up is closed on this server; ask an operator",
      );
    }
    const audit = { kind: "sign-up" as const, identityId: null, username, remoteAddress, detail: "" };
    if (this.options.signUp === "open") {
      const identity = await this.store.createIdentity({
        name: username,
        verifier,
        keyring: this.options.defaultKeyring,
        audit,
      });
      return { identity };
    }
    const now = this.#now();
    const pending = await this.store.createPending(
      {
        kind: "signUp",
        username,
        identityId: null,
        verifier,
        publicKey: null,
        device: "",
        remoteAddress,
        createdAt: now,
        expiresAt: now + this.#pendingTtlMs,
      },
      { ...audit, kind: "pending", detail: "sign-up waits for approval" },
    );
    return { pending };
  }

  async requestDevice(
    identity: IdentityRecord | undefined,
    username: string,
    publicKey: Uint8Array,
    device: string,
    remoteAddress: string,
    admit: () => void = () => {},
  ): Promise<PendingRecord> {
    const now = this.#now();
    // Requests for the name's current owner only: those filed while the name was free (or held
    // by an identity since deleted) neither count against the owner's cap nor reach the owner.
    const owner = identity?.id ?? null;
    const waiting = (await this.store.listPending(now, username)).filter(
      (p) => p.kind === "deviceKey" && p.identityId === owner,
    );
    const same = waiting.find((p) => p.publicKey !== null && constantTimeEqual(p.publicKey, publicKey));
    // The same key asking again: the request it already filed (it proved that key just now).
    if (same !== undefined) return same;
    if (waiting.length >= this.#maxPendingDevices) {
      throw new RateLimitedError(
        `${this.#maxPendingDevices} new devices already wait for approval for this name; ` +
          "approve or reject one from a password login first",
        60_000,
      );
    }
    admit();
    return this.store.createPending(
      {
        kind: "deviceKey",
        username,
        identityId: identity?.id ?? null,
        verifier: null,
        publicKey,
        device,
        remoteAddress,
        createdAt: now,
        expiresAt: now + this.#pendingTtlMs,
      },
      {
        kind: "pending",
        identityId: identity?.id ?? null,
        username,
        remoteAddress,
        detail: `device key "${device}" waits for approval`,
      },
    );
  }
}
