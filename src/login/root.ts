/**
 * The Root (each connection's bootstrap object) and the AuthChallengers it hands out.
 *
 * Invariants:
 * - The Root hands out only AuthChallengers, Identities and PendingApprovals.
 * - A challenger answers one `respond`, within `challengeTimeoutMs`; any failure burns it.
 * - Every failed login counts against the name and the remote address (LoginThrottle) and is
 *   audited; an unknown name fails exactly like a wrong password.
 */
import type { CallContext } from "../caps/index.js";
import { checkVerifier, normalizeUsername } from "../cred/authorizer.js";
import { authMessage, keyLoginMessage } from "../cred/scram.js";
import { randomBytes } from "../cred/secrets.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { RpcConnection } from "../rpc/index.js";
import type { IdentityRecord, StoredVerifier } from "../store/index.js";
import {
  AuthChallenger,
  type AuthChallenger$Server,
  type AuthChallenger_respond_Params,
  type AuthChallenger_respond_Results$Shape,
  type KdfParams,
  PendingApproval,
  type Root$Server,
  type Root_login_Params,
  type Root_loginWithApiKey_Params,
  type Root_loginWithKey_Params,
  type Root_loginWithOtp_Params,
  type Root_resume_Params,
  type Root_signUp_Params,
  SignUpMode,
  type Verifier,
} from "../wire/gen/broker.js";
import { type Broker, onKeyring } from "./broker.js";
import { PendingApprovalServer } from "./pending.js";
import type { AuthMethodName } from "./perspective.js";

const MIN_NONCE_BYTES = 16;
const MAX_NONCE_BYTES = 64;
const SERVER_NONCE_BYTES = 32;
const AUTH_FAILED = "authentication failed";
const MAX_DEVICE_CHARS = 100;

export class RootServer implements Root$Server {
  constructor(
    private readonly broker: Broker,
    private readonly connection: RpcConnection,
  ) {}

  get #address(): string {
    return this.connection.remoteAddress ?? "";
  }

  info() {
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

  async login(params: Root_login_Params) {
    const username = normalizeUsername(params.username);
    const clientNonce = params.clientNonce.slice();
    if (clientNonce.length < MIN_NONCE_BYTES || clientNonce.length > MAX_NONCE_BYTES) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `clientNonce has ${MIN_NONCE_BYTES} to ${MAX_NONCE_BYTES} bytes`,
      );
    }
    this.broker.throttle.check(username, this.#address);
    const challenge = await this.broker.authorizer.passwordChallenge(username);
    const serverNonce = randomBytes(SERVER_NONCE_BYTES);
    const message = authMessage({
      username,
      clientNonce,
      serverNonce,
      salt: challenge.salt,
      kdf: challenge.kdf,
    });
    const challenger = new Challenger(this.broker, this.connection, username, async (proof) => {
      if (!challenge.verify(message, proof) || challenge.identity === undefined) return undefined;
      return {
        identity: challenge.identity,
        method: "password",
        grant: "password",
        serverSignature: challenge.signature(message),
      };
    });
    return {
      salt: challenge.salt,
      kdf: challenge.kdf,
      serverNonce,
      challenger: AuthChallenger.server(challenger),
    };
  }

  async loginWithKey(params: Root_loginWithKey_Params) {
    const username = normalizeUsername(params.username);
    const publicKey = params.publicKey.slice();
    this.broker.throttle.check(username, this.#address);
    const owner = await this.broker.authorizer.keyOwner(username, publicKey);
    const serverNonce = randomBytes(SERVER_NONCE_BYTES);
    const message = keyLoginMessage({ username, publicKey, serverNonce });
    const challenger = new Challenger(this.broker, this.connection, username, async (signature) => {
      if (!this.broker.authorizer.verifyKeySignature(publicKey, message, signature)) return undefined;
      // Re-read: the key may have been revoked while the challenge was out.
      const now = await this.broker.authorizer.keyOwner(username, publicKey);
      if (owner.registered && now.registered && now.identity !== undefined) {
        return {
          identity: now.identity,
          method: "publicKey",
          grant: "public key",
          serverSignature: new Uint8Array(0),
        };
      }
      // A valid signature by a key the user has not registered: a new device, to be approved.
      const pending = await this.broker.authorizer.requestDevice(
        now.identity,
        username,
        publicKey,
        "new device",
        this.#address,
      );
      return { pending };
    });
    return { serverNonce, challenger: AuthChallenger.server(challenger) };
  }

  async loginWithApiKey(params: Root_loginWithApiKey_Params) {
    const key = params.key;
    const address = this.#address;
    this.broker.throttle.attempt("", address);
    const found = await this.#settled("", this.broker.authorizer.checkApiKey(key, this.broker.now()));
    if (found === undefined) {
      await this.#failed("", "api key");
      throw new ParallaxError(ErrorCode.AUTH_FAILED, AUTH_FAILED);
    }
    const { identity, apiKey } = found;
    const grant = `api key ${apiKey.id}${apiKey.description === "" ? "" : ` (${apiKey.description})`}`;
    // The owner's keyring may have shrunk since the key was made: the key never grants more.
    const keyring = apiKey.keyring.filter((k) => onKeyring(identity.keyring, k));
    const session = this.broker.openSession(this.connection, identity, "apiKey", grant, keyring);
    await this.#succeeded(identity, "api key");
    return { identity: session };
  }

  async loginWithOtp(params: Root_loginWithOtp_Params) {
    const username = normalizeUsername(params.username);
    this.broker.throttle.attempt(username, this.#address);
    const identity = await this.#settled(
      username,
      this.broker.authorizer.checkOtp(username, params.otp, this.broker.now()),
    );
    if (identity === undefined) {
      await this.#failed(username, "one-time password");
      throw new ParallaxError(ErrorCode.AUTH_FAILED, AUTH_FAILED);
    }
    const session = this.broker.openSession(this.connection, identity, "otp", "one-time password", null);
    await this.#succeeded(identity, "one-time password");
    return { identity: session };
  }

  async resume(params: Root_resume_Params) {
    this.broker.throttle.attempt("", this.#address);
    const found = await this.#settled(
      "",
      this.broker.authorizer.checkResumeToken(params.token, this.broker.now()),
    );
    if (found === undefined) {
      await this.#failed("", "resume token");
      throw new ParallaxError(
        ErrorCode.AUTH_FAILED,
        "authentication failed: the resume token is unknown, expired, or from before a credential change",
      );
    }
    const { identity, token } = found;
    const grant = `resume token (${token.device})`;
    const keyring = token.keyring?.filter((k) => onKeyring(identity.keyring, k)) ?? null;
    const session = this.broker.openSession(this.connection, identity, "resume", grant, keyring);
    await this.#succeeded(identity, "resume token");
    return { identity: session };
  }

  loginAnonymous() {
    if (this.broker.anonymousKeyring === undefined) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "this server does not allow anonymous logins");
    }
    return { identity: this.broker.openSession(this.connection, undefined, "anonymous", "anonymous", null) };
  }

  async signUp(params: Root_signUp_Params) {
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
    // A sign-up left waiting counts against the address: nobody can reserve names in bulk.
    this.broker.throttle.settle("", this.#address, "identity" in result);
    if ("identity" in result) {
      return {
        outcome: {
          identity: this.broker.openSession(this.connection, result.identity, "signUp", "sign-up", null),
        },
      };
    }
    return {
      outcome: {
        pending: PendingApproval.server(
          new PendingApprovalServer(this.broker, this.connection, result.pending),
        ),
      },
    };
  }

  /** Settles the throttle attempt with whether `check` found a credential. */
  async #settled<T>(username: string, check: Promise<T | undefined>): Promise<T | undefined> {
    let found: T | undefined;
    try {
      found = await check;
    } finally {
      this.broker.throttle.settle(username, this.#address, found !== undefined);
    }
    return found;
  }

  /** Audits a failed attempt (counted by `#settled`). */
  async #failed(username: string, what: string): Promise<void> {
    await this.broker.store.audit({
      kind: "login-failed",
      identityId: null,
      username,
      remoteAddress: this.#address,
      detail: what,
    });
  }

  /** Audits a login; call after the session is open. */
  async #succeeded(identity: IdentityRecord, what: string): Promise<void> {
    await this.broker.store.audit({
      kind: "login",
      identityId: identity.id,
      username: identity.name,
      remoteAddress: this.#address,
      detail: what,
    });
  }
}

type ChallengeOutcome =
  | { identity: IdentityRecord; method: AuthMethodName; grant: string; serverSignature: Uint8Array }
  | { pending: import("../store/index.js").PendingRecord };

/** One login attempt: single use, expires, burnt by any failure. */
class Challenger implements AuthChallenger$Server {
  #used = false;
  readonly #expiresAt: number;

  constructor(
    private readonly broker: Broker,
    private readonly connection: RpcConnection,
    private readonly username: string,
    private readonly check: (proof: Uint8Array) => Promise<ChallengeOutcome | undefined>,
  ) {
    this.#expiresAt = broker.now() + broker.limits.challengeTimeoutMs;
  }

  async respond(
    params: AuthChallenger_respond_Params,
    _ctx: CallContext,
  ): Promise<AuthChallenger_respond_Results$Shape> {
    const address = this.connection.remoteAddress ?? "";
    const audit = (detail: string) =>
      this.broker.store.audit({
        kind: "login-failed",
        identityId: null,
        username: this.username,
        remoteAddress: address,
        detail,
      });
    if (this.#used) {
      this.broker.throttle.failure(this.username, address);
      await audit("challenger reused");
      throw new ParallaxError(ErrorCode.AUTH_FAILED, `${AUTH_FAILED}: this challenger was used already`);
    }
    this.#used = true;
    if (this.broker.now() > this.#expiresAt) {
      await audit("challenger expired");
      throw new ParallaxError(
        ErrorCode.AUTH_FAILED,
        `${AUTH_FAILED}: the challenge expired; start a new login`,
      );
    }
    // In flight from here until settled: concurrent guesses count against what is left.
    this.broker.throttle.attempt(this.username, address);
    let outcome: ChallengeOutcome | undefined;
    try {
      outcome = await this.check(params.proof.slice());
    } finally {
      // A new device key counts as a failure too: nobody can file requests in bulk.
      this.broker.throttle.settle(this.username, address, outcome !== undefined && !("pending" in outcome));
    }
    if (outcome === undefined) {
      await audit("wrong proof");
      throw new ParallaxError(ErrorCode.AUTH_FAILED, AUTH_FAILED);
    }
    if ("pending" in outcome) {
      return {
        outcome: {
          pending: PendingApproval.server(
            new PendingApprovalServer(this.broker, this.connection, outcome.pending),
          ),
        },
      };
    }
    // The proof matched the record read when the challenge was made; the credentials may have
    // changed since (password changed, suspended, keyring cut): log in only on the current one.
    const fresh = await this.broker.store.findIdentityById(outcome.identity.id);
    if (fresh?.suspended) {
      await audit("suspended");
      throw new ParallaxError(ErrorCode.AUTH_FAILED, `${AUTH_FAILED}: the account is suspended`);
    }
    if (fresh === undefined || fresh.epoch !== outcome.identity.epoch) {
      await audit("credentials changed during the login");
      throw new ParallaxError(
        ErrorCode.AUTH_FAILED,
        `${AUTH_FAILED}: the credentials changed during the login; start a new one`,
      );
    }
    const identity = this.broker.openSession(this.connection, fresh, outcome.method, outcome.grant, null);
    await this.broker.store.audit({
      kind: "login",
      identityId: fresh.id,
      username: fresh.name,
      remoteAddress: address,
      detail: outcome.grant,
    });
    return { outcome: { serverSignature: outcome.serverSignature, identity } };
  }
}

/** A verifier from the wire, copied out of the message and checked against the KDF floor. */
export function readVerifier(v: Verifier): StoredVerifier {
  const kdf: KdfParams = v.kdf;
  const out: StoredVerifier = {
    salt: v.salt.slice(),
    kdf: {
      algorithm: kdf.algorithm as "argon2id",
      memoryKiB: kdf.memoryKiB,
      iterations: kdf.iterations,
      parallelism: kdf.parallelism,
    },
    storedKey: v.storedKey.slice(),
    serverKey: v.serverKey.slice(),
  };
  checkVerifier(out);
  return out;
}

/** A device name from the wire. */
export function readDevice(device: string): string {
  if (device.length > MAX_DEVICE_CHARS) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `a device name has at most ${MAX_DEVICE_CHARS} characters`,
    );
  }
  return device;
}
