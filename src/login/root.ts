/**
 * The Root (each connection's bootstrap object) and the AuthChallengers it hands out.
 *
 * Invariants:
 * - The Root hands out only AuthChallengers, Identities and PendingApprovals.
 * - A challenger answers one `respond`, within `challengeTimeoutMs`; any failure burns it. At
 *   most `maxChallengersPerConnection` are outstanding per connection; one that expires drops
 *   its state at once (a clock timer), so an unanswered challenger costs a few bytes.
 * - Password guesses count against the name and the remote address (LoginThrottle) and are
 *   audited; an unknown name fails exactly like a wrong password. Unguessable credentials (a
 *   registered key's signature, API keys, OTPs, resume tokens) never touch the name's count and
 *   are never refused because of it: a valid one logs in even while the name or the address is
 *   locked by others' failures.
 * - A device-key request is bound to the key whose signature was checked: the requester's
 *   PendingApproval shows and waits for that request only, and at the per-name cap the login is
 *   refused rather than answered with another device's request.
 * - An API-key login's view carries the key's URI permissions (`IdentityView.uriPermissions`)
 *   to every service it attaches; no other login carries any.
 *
 * Tests: test/login/login.test.ts, test/login/throttling.test.ts, test/login/device-keys.test.ts,
 * test/login/credential-lifecycle.test.ts, test/login/api-key-scopes.test.ts
 */
import { type CallContext, type CallScope, scoped } from "../caps/index.js";
import type { Timer } from "../clock.js";
import { normalizeUsername } from "../cred/authorizer.js";
import { checkPublicKey } from "../cred/ed25519.js";
import { authMessage, keyLoginMessage } from "../cred/scram.js";
import { hashSecret, newSecret, randomBytes } from "../cred/secrets.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { RpcConnection } from "../rpc/index.js";
import type { IdentityRecord, PendingRecord } from "../store/index.js";
import {
  AuthChallenger,
  type AuthChallenger$Server,
  type AuthChallenger_respond_Params,
  type AuthChallenger_respond_Results$Shape,
  PendingApproval,
  type Root$Server,
  type Root_login_Params,
  type Root_loginWithApiKey_Params,
  type Root_loginWithKey_Params,
  type Root_loginWithOtp_Params,
  type Root_resume_Params,
  type Root_signUp_Params,
  SignUpMode,
} from "../wire/gen/broker.js";
import { anonymousAuditEntry } from "./audit.js";
import type { Broker, LoginGrant } from "./broker.js";
import { readDevice, readVerifier } from "./broker-wire.js";
import { intersectKeyring } from "./keyring.js";
import { PendingApprovalServer } from "./pending.js";

const MIN_NONCE_BYTES = 16;
const MAX_NONCE_BYTES = 64;
const SERVER_NONCE_BYTES = 32;
const AUTH_FAILED = "authentication failed";
const DEFAULT_DEVICE = "new device";

type ChallengeOutcome =
  | { identity: IdentityRecord; grant: LoginGrant; serverSignature: Uint8Array }
  | { pending: PendingRecord; publicKey: Uint8Array };

/**
 * What a challenger checks: a password proof (a guess, throttled per name and address) or a key
 * signature (never a guess). `check` does its own throttling and answers undefined for a wrong
 * proof; it throws what the client should see otherwise.
 */
interface ChallengeCheck {
  readonly username: string;
  /** For the audit log: "wrong proof", "bad signature". */
  readonly failure: string;
  check(proof: Uint8Array): Promise<ChallengeOutcome | undefined>;
}

export class RootServer implements Root$Server {
  readonly #challengers = new Set<AuthChallengerServer>();

  constructor(
    private readonly broker: Broker,
    private readonly connection: RpcConnection,
    /** Set for a connection the broker refused: every method fails with it. */
    private readonly refused?: ParallaxError,
  ) {
    connection.onClose(() => {
      for (const c of [...this.#challengers]) c.burn();
    });
  }

  get #address(): string {
    return this.connection.remoteAddress ?? "";
  }

  #open(): void {
    if (this.refused !== undefined) throw this.refused;
  }

  info() {
    this.#open();
    const b = this.broker;
    const mode = { closed: SignUpMode.CLOSED, open: SignUpMode.OPEN, approval: SignUpMode.APPROVAL }[
      b.signUpMode
    ];
    return {
      info: {
        name: b.serverName,
        signUp: mode,
        anonymous: b.anonymousKeyring !== undefined,
        kdfFloor: b.kdfFloor,
        kdfDefault: b.kdfDefault,
      },
    };
  }

  /** Refuses a new challenger while this connection has too many outstanding. */
  #roomForChallenger(): void {
    const max = this.broker.limits.maxChallengersPerConnection;
    if (this.#challengers.size >= max) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this connection has ${max} logins in progress (maxChallengersPerConnection); answer one or wait for it to expire`,
      );
    }
  }

  #challenger(check: ChallengeCheck): AuthChallenger {
    const c = new AuthChallengerServer(this.broker, this.connection, check, (done) =>
      this.#challengers.delete(done),
    );
    this.#challengers.add(c);
    // Handed out under a scope of its own, so that the client letting go of it frees it at once.
    return scoped(AuthChallenger.server(c), new ReleaseScope(() => c.burn()));
  }

  /** Challengers outstanding on this connection (for tests). */
  get outstandingChallengers(): number {
    return this.#challengers.size;
  }

  async login(params: Root_login_Params) {
    this.#open();
    const username = normalizeUsername(params.username);
    const clientNonce = params.clientNonce.slice();
    if (clientNonce.length < MIN_NONCE_BYTES || clientNonce.length > MAX_NONCE_BYTES) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `clientNonce has ${MIN_NONCE_BYTES} to ${MAX_NONCE_BYTES} bytes`,
      );
    }
    this.#roomForChallenger();
    this.broker.throttle.check(username, this.#address);
    const challenge = await this.broker.authorizer.passwordChallenge(username);
    this.#roomForChallenger();
    const serverNonce = randomBytes(SERVER_NONCE_BYTES);
    const message = authMessage({
      username,
      clientNonce,
      serverNonce,
      salt: challenge.salt,
      kdf: challenge.kdf,
    });
    const address = this.#address;
    const throttle = this.broker.throttle;
    const challenger = this.#challenger({
      username,
      failure: "wrong proof",
      check: async (proof) => {
        // In flight from here until settled: concurrent guesses count against what is left.
        throttle.attempt(username, address);
        const ok = challenge.verify(message, proof) && challenge.identity !== undefined;
        throttle.settle(username, address, ok);
        if (!ok || challenge.identity === undefined) return undefined;
        return {
          identity: challenge.identity,
          grant: { method: "password", label: "password", attenuated: null },
          serverSignature: challenge.signature(message),
        };
      },
    });
    return { salt: challenge.salt, kdf: challenge.kdf, serverNonce, challenger };
  }

  async loginWithKey(params: Root_loginWithKey_Params) {
    this.#open();
    const username = normalizeUsername(params.username);
    const publicKey = params.publicKey.slice();
    checkPublicKey(publicKey);
    const device = readDevice(params.device === "" ? DEFAULT_DEVICE : params.device);
    this.#roomForChallenger();
    const serverNonce = randomBytes(SERVER_NONCE_BYTES);
    const message = keyLoginMessage({ username, publicKey, serverNonce });
    const address = this.#address;
    const throttle = this.broker.throttle;
    const challenger = this.#challenger({
      username,
      failure: "bad signature",
      check: async (signature) => {
        // A signature is not a guess: never refused for the name's failures, nor a valid one for
        // the address's.
        throttle.attemptSecret(address);
        const valid = this.broker.authorizer.verifyKeySignature(publicKey, message, signature);
        const refused = throttle.settleSecret(address, valid);
        if (refused !== undefined) throw refused;
        if (!valid) return undefined;
        // Read now, not when the challenge was made: the key may have been revoked or approved since.
        const owner = await this.broker.authorizer.keyOwner(username, publicKey);
        if (owner.registered && owner.identity !== undefined) {
          return {
            identity: owner.identity,
            grant: { method: "publicKey", label: "public key", attenuated: null },
            serverSignature: new Uint8Array(0),
          };
        }
        // A valid signature by a key the user has not registered: a new device, to be approved.
        // Filing a new request is throttled (per name and address, apart from passwords); the
        // same key asking again gets its own request back.
        const pending = await this.broker.authorizer.requestDevice(
          owner.identity,
          username,
          publicKey,
          device,
          address,
          () => throttle.deviceRequest(username, address),
        );
        return { pending, publicKey };
      },
    });
    return { serverNonce, challenger };
  }

  /**
   * Runs the check of an unguessable credential under the throttle's secret rules: never
   * refused for the name's failures; a valid credential passes even from a locked address.
   */
  async #secret<T>(
    what: string,
    username: string,
    check: () => Promise<T | undefined>,
    failure = `${AUTH_FAILED}: the ${what} is unknown, expired or revoked`,
  ): Promise<T> {
    const address = this.#address;
    const throttle = this.broker.throttle;
    throttle.attemptSecret(address);
    let found: T | undefined;
    let refused: ParallaxError | undefined;
    try {
      found = await check();
    } finally {
      refused = throttle.settleSecret(address, found !== undefined);
    }
    if (found === undefined) {
      await this.broker.store.audit(anonymousAuditEntry("login-failed", username, address, what));
      throw refused ?? new ParallaxError(ErrorCode.AUTH_FAILED, failure);
    }
    return found;
  }

  async loginWithApiKey(params: Root_loginWithApiKey_Params) {
    this.#open();
    const now = this.broker.clock.now();
    const { identity, apiKey } = await this.#secret("api key", "", () =>
      this.broker.authorizer.checkApiKey(params.key, now),
    );
    const label = `api key ${apiKey.id}${apiKey.description === "" ? "" : ` (${apiKey.description})`}`;
    // The owner's keyring may have shrunk since the key was made: the key never grants more.
    const attenuated = intersectKeyring(apiKey.keyring, identity.keyring);
    // The key's URI limits travel with the login to every service it attaches.
    const session = this.broker.openLogin(this.connection, identity, {
      method: "apiKey",
      label,
      attenuated,
      uriPermissions: apiKey.permissions,
    });
    await this.#succeeded(identity, "api key");
    return { identity: session };
  }

  async loginWithOtp(params: Root_loginWithOtp_Params) {
    this.#open();
    const username = normalizeUsername(params.username);
    const now = this.broker.clock.now();
    const identity = await this.#secret("one-time password", username, () =>
      this.broker.authorizer.checkOtp(username, params.otp, now),
    );
    const session = this.broker.openLogin(this.connection, identity, {
      method: "otp",
      label: "one-time password",
      attenuated: null,
    });
    await this.#succeeded(identity, "one-time password");
    return { identity: session };
  }

  async resume(params: Root_resume_Params) {
    this.#open();
    const now = this.broker.clock.now();
    const next = newSecret("pxr");
    const found = await this.#secret(
      "resume token",
      "",
      async () => {
        const r = await this.broker.authorizer.rotateResumeToken(params.token, hashSecret(next), now);
        if (r?.kind === "reused") {
          // A token presented after it was rotated: someone else holds a copy. Its whole family
          // (every token descending from that login) is gone already; the logins resumed from it
          // end too, whoever holds them, and the audit log says so.
          this.broker.endResumeFamily(
            r.token.identityId,
            r.token.family,
            "a resume token of this login was used twice: every login resumed from it is ended",
          );
          await this.broker.store.audit(
            anonymousAuditEntry(
              "revoked",
              r.identity?.name ?? "",
              this.#address,
              "resume token reused after rotation: its family was revoked",
              r.identity?.id ?? null,
            ),
          );
          return undefined;
        }
        return r;
      },
      `${AUTH_FAILED}: the resume token is unknown, expired, spent, or from before a credential change`,
    );
    const { identity, token } = found;
    const label = `resume token (${token.device})`;
    const attenuated = token.keyring === null ? null : intersectKeyring(token.keyring, identity.keyring);
    const session = this.broker.openLogin(this.connection, identity, {
      method: "resume",
      label,
      attenuated,
      resumeFamily: token.family,
    });
    await this.#succeeded(identity, "resume token");
    return { identity: session, token: next, expiresAt: BigInt(token.expiresAt) };
  }

  loginAnonymous() {
    this.#open();
    if (this.broker.anonymousKeyring === undefined) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "this server does not allow anonymous logins");
    }
    return {
      identity: this.broker.openLogin(this.connection, undefined, {
        method: "anonymous",
        label: "anonymous",
        attenuated: null,
      }),
    };
  }

  async signUp(params: Root_signUp_Params) {
    this.#open();
    const username = normalizeUsername(params.username);
    const verifier = readVerifier(params.verifier);
    // Sign-ups are charged to the address; only open sign-ups that succeed are refunded, so
    // nobody can reserve names by the hundred while they wait for approval.
    this.broker.throttle.attempt("", this.#address);
    let result: Awaited<ReturnType<typeof this.broker.authorizer.signUp>>;
    try {
      result = await this.broker.authorizer.signUp(username, verifier, this.#address);
    } catch (err) {
      this.broker.throttle.settle("", this.#address, false);
      throw err;
    }
    this.broker.throttle.settle("", this.#address, "identity" in result);
    if ("identity" in result) {
      return {
        outcome: {
          identity: this.broker.openLogin(this.connection, result.identity, {
            method: "signUp",
            label: "sign-up",
            attenuated: null,
          }),
        },
      };
    }
    return {
      outcome: {
        pending: PendingApproval.server(
          new PendingApprovalServer(this.broker, this.connection, result.pending, null),
        ),
      },
    };
  }

  /** Audits a login; call after the login is open. */
  async #succeeded(identity: IdentityRecord, what: string): Promise<void> {
    await this.broker.store.audit(
      anonymousAuditEntry("login", identity.name, this.#address, what, identity.id),
    );
  }
}

/**
 * The scope a challenger is handed out under: it admits every call and runs `onReleased` once the
 * peer holds nothing handed out under it any more.
 */
class ReleaseScope implements CallScope {
  #exports = 0;

  constructor(private readonly onReleased: () => void) {}

  enterCall(): void {}
  leaveCall(): void {}
  enterExport(): void {
    this.#exports++;
  }
  leaveExport(): void {
    if (--this.#exports === 0) this.onReleased();
  }
}

/** One login attempt: single use, expires, burnt by any failure. */
class AuthChallengerServer implements AuthChallenger$Server {
  /** Cleared when used, expired or burnt: a spent challenger keeps nothing. */
  #check: ChallengeCheck | undefined;
  #timer: Timer | undefined;
  readonly #expiresAt: number;
  #expired = false;

  constructor(
    private readonly broker: Broker,
    private readonly connection: RpcConnection,
    check: ChallengeCheck,
    private readonly onDone: (c: AuthChallengerServer) => void,
  ) {
    this.#check = check;
    const ttl = broker.limits.challengeTimeoutMs;
    this.#expiresAt = broker.clock.now() + ttl;
    this.#timer = broker.clock.setTimer(ttl, () => {
      this.#expired = true;
      this.burn();
    });
  }

  /** Drops the challenge's state and frees its slot. Idempotent. */
  burn(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#check = undefined;
    this.onDone(this);
  }

  async respond(
    params: AuthChallenger_respond_Params,
    _ctx: CallContext,
  ): Promise<AuthChallenger_respond_Results$Shape> {
    const address = this.connection.remoteAddress ?? "";
    const check = this.#check;
    const expired = this.#expired || this.broker.clock.now() > this.#expiresAt;
    this.burn();
    const audit = (username: string, detail: string) =>
      this.broker.store.audit(anonymousAuditEntry("login-failed", username, address, detail));
    if (check === undefined || expired) {
      // Not a guess at anyone's password: counted against the address only.
      if (!expired) this.broker.throttle.failure("", address);
      await audit("", expired ? "challenger expired" : "challenger reused");
      throw new ParallaxError(
        ErrorCode.AUTH_FAILED,
        expired
          ? `${AUTH_FAILED}: the challenge expired; start a new login`
          : `${AUTH_FAILED}: this challenger was used already`,
      );
    }
    const outcome = await check.check(params.proof.slice());
    if (outcome === undefined) {
      await audit(check.username, check.failure);
      throw new ParallaxError(ErrorCode.AUTH_FAILED, AUTH_FAILED);
    }
    if ("pending" in outcome) {
      return {
        outcome: {
          pending: PendingApproval.server(
            new PendingApprovalServer(this.broker, this.connection, outcome.pending, outcome.publicKey),
          ),
        },
      };
    }
    // The proof matched the record read when the challenge was made; the credentials may have
    // changed since (password changed, suspended, keyring cut): log in only on the current one.
    const fresh = await this.broker.store.findIdentityById(outcome.identity.id);
    if (fresh?.suspended) {
      await audit(check.username, "suspended");
      throw new ParallaxError(ErrorCode.AUTH_FAILED, `${AUTH_FAILED}: the account is suspended`);
    }
    if (fresh === undefined || fresh.epoch !== outcome.identity.epoch) {
      await audit(check.username, "credentials changed during the login");
      throw new ParallaxError(
        ErrorCode.AUTH_FAILED,
        `${AUTH_FAILED}: the credentials changed during the login; start a new one`,
      );
    }
    const identity = this.broker.openLogin(this.connection, fresh, outcome.grant);
    await this.broker.store.audit(
      anonymousAuditEntry("login", fresh.name, address, outcome.grant.label, fresh.id),
    );
    return { outcome: { serverSignature: outcome.serverSignature, identity } };
  }
}
