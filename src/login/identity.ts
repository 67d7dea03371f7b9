/**
 * The Identity capability: one login of one user on one connection (its Login).
 *
 * Invariants:
 * - `attach` hands out a Perspective only for a pair on this login's keyring, bound to a new
 *   Attachment under this login.
 * - Minting and changing credentials (API keys, OTPs, public keys, the password, logging out
 *   everywhere) needs a password login; every such write names this login as its actor, and the
 *   store refuses it (PARALLAX_ERR_REVOKED) unless this login's epoch is still current inside
 *   the write's own transaction — no check-then-commit across two transactions.
 * - A change that bumps the epoch commits first, then revokes every older login of the user
 *   (this one included) before the call returns.
 * - `logout` ends this login alone; only `logoutEverywhere` (a password login) ends the others.
 * - An API key never grants more than its minter's login: its keyring is a subset of this
 *   login's, and its URI permissions (checked by `readUriPermissions`) only narrow what the
 *   key's logins may do on the router's URIs.
 *
 * Tests: test/login/identity.test.ts, test/login/credential-lifecycle.test.ts,
 * test/login/api-key-scopes.test.ts
 */
import { type CallContext, type Capability, scoped } from "../caps/index.js";
import { checkPublicKey } from "../cred/ed25519.js";
import { hashSecret, newSecret, randomBytes } from "../cred/secrets.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { AuditKind } from "../store/index.js";
import type {
  Identity$Server,
  Identity_addPublicKey_Params,
  Identity_attach_Params,
  Identity_changePassword_Params,
  Identity_createApiKey_Params,
  Identity_decideDevice_Params,
  Identity_issueResumeToken_Params,
  Identity_revokeApiKey_Params,
  Identity_revokePublicKey_Params,
  WhoAmI$Shape,
} from "../wire/gen/broker.js";
import { actorOf, auditEntry } from "./audit.js";
import type { Broker } from "./broker.js";
import {
  AUTH_METHOD,
  apiKeyInfo,
  describeMethod,
  pendingInfo,
  readDescription,
  readDevice,
  readUriPermissions,
  readVerifier,
} from "./broker-wire.js";
import { Attachment, detachReason, type Login } from "./grant.js";
import { ADMIN_PAIR, onKeyring, readKeyring } from "./keyring.js";

/** Bytes of a resume-token family id. */
const FAMILY_BYTES = 16;

export class IdentityServer implements Identity$Server {
  constructor(
    private readonly broker: Broker,
    private readonly login: Login,
  ) {}

  get #view() {
    return this.login.view;
  }

  #audit(kind: AuditKind, detail: string) {
    return auditEntry(this.login, kind, detail);
  }

  /** The write context of a credential change made by this login. */
  #as(kind: AuditKind, detail: string) {
    return { actor: actorOf(this.login), audit: this.#audit(kind, detail) };
  }

  /** Password logins only (and sign-ups, which just proved the password by setting it). */
  #needPassword(what: string): void {
    this.login.check();
    const m = this.login.authMethod;
    if (m !== "password" && m !== "signUp") {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `${what} needs a password login; this login was made with ${describeMethod(m)}`,
      );
    }
  }

  #needAccount(): number {
    this.login.check();
    if (this.#view.anonymous)
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "anonymous logins have no account");
    return this.#view.id;
  }

  whoami(): { info: WhoAmI$Shape } {
    this.login.check();
    // What this user's logins on this connection hold; other users sharing the connection stay private.
    const logins = this.#view.anonymous
      ? [this.login]
      : this.broker.loginsOf(this.#view.id, this.login.connection);
    const attached = logins.flatMap((l) =>
      [...l.attachments].map((a) => ({
        service: a.service,
        perspective: a.perspectiveName,
        grant: l.credentialLabel,
      })),
    );
    return {
      info: {
        name: this.#view.name,
        authMethod: AUTH_METHOD[this.#view.authMethod],
        grant: this.login.credentialLabel,
        keyring: [...this.#view.keyring],
        epoch: BigInt(this.#view.epoch),
        attached,
        admin: onKeyring(this.#view.keyring, ADMIN_PAIR),
      },
    };
  }

  keyring() {
    this.login.check();
    return { entries: [...this.#view.keyring] };
  }

  async attach(params: Identity_attach_Params, _ctx: CallContext) {
    const client: Capability | null = params.hasClient() ? params.client : null;
    let owned = false;
    try {
      this.login.check();
      const pair = { service: params.service, perspective: params.perspective };
      if (!onKeyring(this.#view.keyring, pair)) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          `("${pair.service}", "${pair.perspective}") is not on this login's keyring`,
        );
      }
      const service = this.broker.service(pair.service);
      if (service === undefined) {
        throw new ParallaxError(
          ErrorCode.NOT_FOUND,
          `service "${pair.service}" is not running on this server`,
        );
      }
      if (this.login.attachments.size >= this.broker.limits.maxAttachmentsPerLogin) {
        throw new ParallaxError(
          ErrorCode.QUOTA,
          `this login has ${this.login.attachments.size} perspectives attached (maxAttachmentsPerLogin); detach one first`,
        );
      }
      const found = await service.getPerspectiveForIdentity(pair.perspective, this.#view);
      this.login.check();
      const perspective = await found.attached(client, this.#view);
      const attachment = new Attachment(this.login, pair.service, pair.perspective, perspective, client);
      owned = true;
      this.login.attachments.add(attachment);
      if (this.login.ended !== undefined) {
        attachment.end(detachReason("revoked", this.login.ended.message));
        throw this.login.ended;
      }
      return { perspective: scoped(perspective.capability(), attachment) };
    } catch (err) {
      if (client !== null && !owned) client.dispose();
      throw err;
    }
  }

  async changePassword(params: Identity_changePassword_Params) {
    this.#needPassword("changing the password");
    const id = this.#needAccount();
    const verifier = readVerifier(params.newVerifier);
    const epoch = await this.broker.store.changeVerifier(
      id,
      verifier,
      this.#as("credential", "password changed"),
    );
    this.broker.revokeIdentity(id, epoch, "the password was changed");
  }

  async issueResumeToken(params: Identity_issueResumeToken_Params) {
    const id = this.#needAccount();
    const m = this.login.authMethod;
    if (m === "apiKey" || m === "otp" || m === "resume") {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        m === "resume"
          ? "a resumed login gets its next token from Root.resume; it cannot issue more"
          : `resume tokens cannot be issued to a login made with ${describeMethod(m)}`,
      );
    }
    const device = readDevice(params.device);
    const token = newSecret("pxr");
    const family = randomBytes(FAMILY_BYTES);
    const expiresAt = this.broker.clock.now() + this.broker.limits.resumeTokenTtlMs;
    await this.broker.store.createResumeToken(
      {
        identityId: id,
        tokenHash: hashSecret(token),
        epoch: this.#view.epoch,
        device,
        keyring: this.login.attenuated,
        expiresAt,
        family,
      },
      {
        actor: actorOf(this.login),
        max: this.broker.limits.maxResumeTokensPerIdentity,
        now: this.broker.clock.now(),
      },
    );
    this.login.issuedFamilies.push(family);
    this.login.check();
    return { token, expiresAt: BigInt(expiresAt) };
  }

  async createApiKey(params: Identity_createApiKey_Params) {
    this.#needPassword("minting an API key");
    const id = this.#needAccount();
    const description = readDescription(params.description);
    const keyring = readKeyring(params.keyring);
    if (keyring.length === 0) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        "an API key needs the (service, perspective) pairs it may attach; an empty keyring grants nothing",
      );
    }
    for (const pair of keyring) {
      if (!onKeyring(this.#view.keyring, pair)) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          `an API key cannot grant ("${pair.service}", "${pair.perspective}"): it is not on this login's keyring`,
        );
      }
    }
    const permissions = params.hasPermissions() ? readUriPermissions(params.permissions) : [];
    const expiresAt = Number(params.expiresAt);
    const now = this.broker.clock.now();
    if (!Number.isSafeInteger(expiresAt) || expiresAt < 0 || (expiresAt !== 0 && expiresAt <= now)) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "expiresAt is in the past (0 means never)");
    }
    let secret = "";
    const key = await this.broker.store.createApiKey(
      { identityId: id, description, keyring, permissions, createdAt: now, expiresAt },
      (keyId) => {
        secret = newSecret("pxk", keyId);
        return hashSecret(secret);
      },
      {
        ...this.#as("credential", `api key created: ${description}`),
        max: this.broker.limits.maxApiKeysPerIdentity,
      },
    );
    return { key: apiKeyInfo(key), secret };
  }

  async listApiKeys() {
    this.#needPassword("listing API keys");
    const keys = await this.broker.store.listApiKeys(this.#needAccount());
    return { keys: keys.map(apiKeyInfo) };
  }

  async revokeApiKey(params: Identity_revokeApiKey_Params) {
    this.#needPassword("revoking an API key");
    const id = this.#needAccount();
    const keyId = Number(params.id);
    const epoch = await this.broker.store.revokeApiKey(id, keyId, this.#as("revoked", `api key ${keyId}`));
    if (epoch === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `you have no API key ${keyId}`);
    this.broker.revokeIdentity(id, epoch, `API key ${keyId} was revoked`);
  }

  async createOtp() {
    this.#needPassword("making a one-time password");
    const id = this.#needAccount();
    const otp = newSecret("pxo");
    const expiresAt = this.broker.clock.now() + this.broker.limits.otpTtlMs;
    await this.broker.store.createOtp(
      { identityId: id, otpHash: hashSecret(otp), epoch: this.#view.epoch, expiresAt },
      {
        actor: actorOf(this.login),
        max: this.broker.limits.maxOtpsPerIdentity,
        now: this.broker.clock.now(),
      },
    );
    return { otp, expiresAt: BigInt(expiresAt) };
  }

  async addPublicKey(params: Identity_addPublicKey_Params) {
    this.#needPassword("adding a public key");
    const id = this.#needAccount();
    const key = params.publicKey.slice();
    checkPublicKey(key);
    const device = readDevice(params.device);
    await this.broker.store.addPublicKey(
      id,
      key,
      device,
      this.#as("credential", `public key added (${device})`),
    );
  }

  async listPublicKeys() {
    const keys = await this.broker.store.listPublicKeys(this.#needAccount());
    return {
      keys: keys.map((k) => ({ publicKey: k.publicKey, device: k.device, addedAt: BigInt(k.addedAt) })),
    };
  }

  async revokePublicKey(params: Identity_revokePublicKey_Params) {
    this.#needPassword("revoking a public key");
    const id = this.#needAccount();
    const epoch = await this.broker.store.revokePublicKey(
      id,
      params.publicKey.slice(),
      this.#as("revoked", "public key"),
    );
    if (epoch === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, "you have no such public key");
    this.broker.revokeIdentity(id, epoch, "a public key was revoked");
  }

  async pendingDevices() {
    this.#needPassword("listing pending devices");
    const id = this.#needAccount();
    const requests = await this.broker.store.listDeviceRequests(id, this.broker.clock.now());
    return { requests: requests.map(pendingInfo) };
  }

  async decideDevice(params: Identity_decideDevice_Params) {
    this.#needPassword("approving a device");
    const id = this.#needAccount();
    const requestId = Number(params.id);
    const request = await this.broker.store.findPending(requestId);
    if (request === undefined || request.kind !== "deviceKey" || request.identityId !== id) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `you have no pending device ${requestId}`);
    }
    await this.broker.decide(requestId, params.approve, params.reason, {
      name: this.#view.name,
      actor: actorOf(this.login) ?? null,
      address: this.login.connection.remoteAddress ?? "",
    });
  }

  async logout() {
    this.login.check();
    const families = this.login.resumeFamilies;
    if (!this.#view.anonymous && families.length > 0) {
      await this.broker.store.deleteResumeFamilies(this.#view.id, families);
    }
    if (!this.#view.anonymous) await this.broker.store.audit(this.#audit("revoked", "logout (this login)"));
    this.broker.endLogin(this.login, detachReason("revoked", "logged out"));
  }

  async logoutEverywhere() {
    this.#needPassword("logging out everywhere");
    const id = this.#needAccount();
    const epoch = await this.broker.store.bumpEpoch(id, this.#as("revoked", "logout everywhere"));
    this.broker.revokeIdentity(id, epoch, "logged out everywhere");
  }
}
