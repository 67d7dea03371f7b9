/**
 * The Identity capability: one login of one user on one connection (its Session).
 *
 * Invariants:
 * - `attach` hands out a Perspective only for a pair on this login's keyring, bound to a new
 *   Attachment under this session.
 * - Credential minting and changes (API keys, OTPs, public keys, password) need a password login.
 * - Every credential change commits its epoch bump, then revokes every older login of the user
 *   (this one included) before the call returns.
 */
import { type CallContext, type Capability, scoped } from "../caps/index.js";
import { normalizeUsername } from "../cred/authorizer.js";
import { checkPublicKey } from "../cred/ed25519.js";
import { hashSecret, newSecret } from "../cred/secrets.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { AuditEntry, KeyringPair } from "../store/index.js";
import {
  AuthMethod,
  type Identity$Server,
  type Identity_addPublicKey_Params,
  type Identity_attach_Params,
  type Identity_changePassword_Params,
  type Identity_createApiKey_Params,
  type Identity_decideDevice_Params,
  type Identity_issueResumeToken_Params,
  type Identity_revokeApiKey_Params,
  type Identity_revokePublicKey_Params,
  type KeyringEntry,
  PendingKind,
  type PendingRequest$Shape,
  type WhoAmI$Shape,
} from "../wire/gen/broker.js";
import type * as $ from "capnp-ts";
import { ADMIN_PAIR, type Broker, OTP_TTL_MS, onKeyring, RESUME_TOKEN_TTL_MS } from "./broker.js";
import { Attachment, type Session } from "./grant.js";
import type { AuthMethodName } from "./perspective.js";
import { readDevice, readVerifier } from "./root.js";

const MAX_DESCRIPTION_CHARS = 200;
const MAX_KEYRING_ENTRIES = 256;

const AUTH_METHOD: Record<AuthMethodName, AuthMethod> = {
  password: AuthMethod.PASSWORD,
  publicKey: AuthMethod.PUBLIC_KEY,
  apiKey: AuthMethod.API_KEY,
  otp: AuthMethod.OTP,
  resume: AuthMethod.RESUME,
  anonymous: AuthMethod.ANONYMOUS,
  signUp: AuthMethod.SIGN_UP,
};

export class IdentityServer implements Identity$Server {
  constructor(
    private readonly broker: Broker,
    private readonly session: Session,
  ) {}

  get #view() {
    return this.session.view;
  }

  #audit(kind: AuditEntry["kind"], detail: string): AuditEntry {
    return {
      kind,
      identityId: this.#view.id,
      username: this.#view.name,
      remoteAddress: (this.session.connection as { remoteAddress?: string }).remoteAddress ?? "",
      detail,
    };
  }

  /** Password logins only (and sign-ups, which just proved the password by setting it). */
  #needPassword(what: string): void {
    this.session.check();
    const m = this.session.authMethod;
    if (m !== "password" && m !== "signUp") {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `${what} needs a password login; this login was made with ${describeMethod(m)}`,
      );
    }
  }

  #needAccount(): number {
    this.session.check();
    if (this.#view.id < 0)
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "anonymous logins have no account");
    return this.#view.id;
  }

  whoami(): { info: WhoAmI$Shape } {
    const attached = this.broker.sessionsOn(this.session.connection).flatMap((s) =>
      [...s.attachments].map((a) => ({
        service: a.service,
        perspective: a.perspectiveName,
        grant: s.grant,
      })),
    );
    return {
      info: {
        name: this.#view.name,
        authMethod: AUTH_METHOD[this.#view.authMethod],
        grant: this.session.grant,
        keyring: [...this.#view.keyring],
        epoch: BigInt(this.#view.epoch),
        attached,
        admin: onKeyring(this.#view.keyring, ADMIN_PAIR),
      },
    };
  }

  keyring() {
    return { entries: [...this.#view.keyring] };
  }

  async attach(params: Identity_attach_Params, _ctx: CallContext) {
    this.session.check();
    const pair = { service: params.service, perspective: params.perspective };
    if (!onKeyring(this.#view.keyring, pair)) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `("${pair.service}", "${pair.perspective}") is not on this login's keyring`,
      );
    }
    const service = this.broker.service(pair.service);
    if (service === undefined) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `service "${pair.service}" is not running on this server`);
    }
    if (this.session.attachments.size >= this.broker.limits.maxAttachmentsPerLogin) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this login has ${this.session.attachments.size} perspectives attached (maxAttachmentsPerLogin); detach one first`,
      );
    }
    const client: Capability | null = params.hasClient() ? params.client : null;
    try {
      const found = await service.getPerspectiveForIdentity(pair.perspective, this.#view);
      this.session.check();
      const perspective = await found.attached(client, this.#view);
      const attachment = new Attachment(this.session, pair.service, pair.perspective, perspective, client);
      this.session.attachments.add(attachment);
      if (this.session.revoked !== undefined) {
        attachment.end(this.session.revoked.message);
        throw this.session.revoked;
      }
      return { perspective: scoped(perspective.capability(), attachment) };
    } catch (err) {
      if (client !== null && !client.disposed && !this.#ownedByAttachment(client)) client.dispose();
      throw err;
    }
  }

  #ownedByAttachment(client: Capability): boolean {
    for (const a of this.session.attachments) if (a.client === client) return true;
    return false;
  }

  async changePassword(params: Identity_changePassword_Params) {
    this.#needPassword("changing the password");
    const id = this.#needAccount();
    const verifier = readVerifier(params.newVerifier);
    // Services whose data is keyed to the password (the wallet) may refuse or take over.
    await this.broker.beforePasswordChange(id);
    const epoch = await this.broker.store.changeVerifier(
      id,
      verifier,
      this.#audit("credential", "password changed"),
    );
    this.broker.revokeIdentity(id, epoch, "the password was changed");
  }

  async issueResumeToken(params: Identity_issueResumeToken_Params) {
    const id = this.#needAccount();
    const m = this.session.authMethod;
    if (m === "apiKey" || m === "otp") {
      // A token would outlive the key's expiry or the OTP's single use.
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `resume tokens cannot be issued to a login made with ${describeMethod(m)}`,
      );
    }
    const device = readDevice(params.device);
    const token = newSecret("pxr");
    const expiresAt = this.broker.now() + RESUME_TOKEN_TTL_MS;
    await this.broker.store.createResumeToken({
      identityId: id,
      tokenHash: hashSecret(token),
      epoch: this.#view.epoch,
      device,
      keyring: this.session.attenuated,
      expiresAt,
    });
    this.session.check();
    return { token, expiresAt: BigInt(expiresAt) };
  }

  async createApiKey(params: Identity_createApiKey_Params) {
    this.#needPassword("minting an API key");
    const id = this.#needAccount();
    const description = params.description;
    if (description.length > MAX_DESCRIPTION_CHARS) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `a description has at most ${MAX_DESCRIPTION_CHARS} characters`,
      );
    }
    const wanted = readKeyring(params.keyring);
    for (const pair of wanted) {
      if (!onKeyring(this.#view.keyring, pair)) {
        throw new ParallaxError(
          ErrorCode.PERMISSION_DENIED,
          `an API key cannot grant ("${pair.service}", "${pair.perspective}"): it is not on this login's keyring`,
        );
      }
    }
    const expiresAt = Number(params.expiresAt);
    const now = this.broker.now();
    if (expiresAt !== 0 && expiresAt <= now) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "expiresAt is in the past (0 means never)");
    }
    const keyring = wanted.length === 0 ? [...this.#view.keyring] : wanted;
    let secret = "";
    const key = await this.broker.store.createApiKey(
      { identityId: id, description, keyring, createdAt: now, expiresAt },
      (keyId) => {
        secret = newSecret("pxk", keyId);
        return hashSecret(secret);
      },
      this.#audit("credential", `api key created: ${description}`),
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
    const epoch = await this.broker.store.revokeApiKey(id, keyId, this.#audit("revoked", `api key ${keyId}`));
    if (epoch === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `you have no API key ${keyId}`);
    this.broker.revokeIdentity(id, epoch, `API key ${keyId} was revoked`);
  }

  async createOtp() {
    this.#needPassword("making a one-time password");
    const id = this.#needAccount();
    const otp = newSecret("pxo");
    const expiresAt = this.broker.now() + OTP_TTL_MS;
    await this.broker.store.createOtp({
      identityId: id,
      otpHash: hashSecret(otp),
      epoch: this.#view.epoch,
      expiresAt,
    });
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
      this.#audit("credential", `public key added (${device})`),
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
      this.#audit("revoked", "public key"),
    );
    if (epoch === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, "you have no such public key");
    this.broker.revokeIdentity(id, epoch, "a public key was revoked");
  }

  async pendingDevices() {
    this.#needPassword("listing pending devices");
    this.#needAccount();
    const all = await this.broker.store.listPending(this.broker.now(), this.#view.name);
    return { requests: all.filter((p) => p.kind === "deviceKey").map(pendingInfo) };
  }

  async decideDevice(params: Identity_decideDevice_Params) {
    this.#needPassword("approving a device");
    this.#needAccount();
    const id = Number(params.id);
    const request = await this.broker.store.findPending(id);
    if (request === undefined || request.kind !== "deviceKey" || request.username !== this.#view.name) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `you have no pending device ${id}`);
    }
    await this.broker.decide(id, params.approve, params.reason, this.#view.name);
  }

  async logout() {
    const id = this.#needAccount();
    const epoch = await this.broker.store.bumpEpoch(id, this.#audit("revoked", "logout"));
    this.broker.revokeIdentity(id, epoch, "logged out");
  }
}

function describeMethod(m: AuthMethodName): string {
  return {
    password: "a password",
    publicKey: "a public key",
    apiKey: "an API key",
    otp: "a one-time password",
    resume: "a resume token",
    anonymous: "no credential (anonymous)",
    signUp: "a sign-up",
  }[m];
}

/** A keyring from the wire, bounded and checked. */
export function readKeyring(list: $.List<KeyringEntry>): KeyringPair[] {
  if (list.getLength() > MAX_KEYRING_ENTRIES) {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a keyring has at most ${MAX_KEYRING_ENTRIES} entries`);
  }
  const out: KeyringPair[] = [];
  for (const e of list.toArray()) {
    const pair = { service: normalizeUsername(e.service), perspective: normalizeUsername(e.perspective) };
    if (!onKeyring(out, pair)) out.push(pair);
  }
  return out;
}

export function apiKeyInfo(k: import("../store/index.js").ApiKeyRecord) {
  return {
    id: BigInt(k.id),
    description: k.description,
    keyring: [...k.keyring],
    createdAt: BigInt(k.createdAt),
    expiresAt: BigInt(k.expiresAt),
  };
}

export function pendingInfo(p: import("../store/index.js").PendingRecord): PendingRequest$Shape {
  return {
    id: BigInt(p.id),
    kind: p.kind === "signUp" ? PendingKind.SIGN_UP : PendingKind.DEVICE_KEY,
    username: p.username,
    device: p.device,
    publicKey: p.publicKey ?? new Uint8Array(0),
    createdAt: BigInt(p.createdAt),
    remoteAddress: p.remoteAddress,
  };
}
