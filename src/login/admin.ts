/**
 * The ("broker", "admin") service: an admin's Perspective lists and decides pending requests and
 * manages users. Names in its arguments are the accounts acted *on*; the admin acting is the one
 * whose login attached the perspective, and every change is checked against that login's epoch
 * inside the store's transaction and audited with the admin's name and address.
 *
 * Tests: test/login/pending.test.ts, test/login/authority.test.ts
 */
import type { CallContext } from "../caps/index.js";
import { normalizeUsername } from "../cred/authorizer.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import type { IdentityRecord } from "../store/index.js";
import {
  Admin,
  type Admin$Server,
  type Admin_decide_Params,
  type Admin_setKeyring_Params,
  type Admin_suspend_Params,
} from "../wire/gen/broker.js";
import { actorOf, auditEntry } from "./audit.js";
import type { Broker } from "./broker.js";
import { pendingInfo } from "./broker-wire.js";
import { type Grant, grantOf } from "./grant.js";
import { ADMIN_PAIR, readKeyring } from "./keyring.js";
import { PerUserService, UserPerspective } from "./per-user-service.js";
import type { IdentityView } from "./perspective.js";
import type { ServiceModule } from "./service-module.js";

/** The admin service's module; the broker always runs it. Nobody gets it by default. */
export function adminModule(broker: Broker): ServiceModule<AdminService> {
  return { name: ADMIN_PAIR.service, defaultKeyring: [], create: () => new AdminService(broker) };
}

export class AdminService extends PerUserService<null, AdminPerspective> {
  readonly name = ADMIN_PAIR.service;

  constructor(readonly broker: Broker) {
    super();
  }

  protected newPerspective(name: string, identity: IdentityView): AdminPerspective | undefined {
    return name === ADMIN_PAIR.perspective ? new AdminPerspective(this, identity) : undefined;
  }

  protected newUser(): null {
    return null;
  }
}

export class AdminPerspective extends UserPerspective<null> implements Admin$Server {
  constructor(
    readonly admin: AdminService,
    identity: IdentityView,
  ) {
    super(admin, identity);
  }

  capability(): Admin {
    return Admin.server(this.serve<Admin$Server>());
  }

  get #broker(): Broker {
    return this.admin.broker;
  }

  #grant(ctx: CallContext): Grant {
    const grant = grantOf(ctx);
    if (grant === undefined) throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "admin calls need a login");
    return grant;
  }

  async listPending() {
    const all = await this.#broker.store.listPending(this.#broker.clock.now());
    return { requests: all.map(pendingInfo) };
  }

  async decide(params: Admin_decide_Params, ctx: CallContext) {
    const grant = this.#grant(ctx);
    await this.#broker.decide(Number(params.id), params.approve, params.reason, {
      name: this.identity.name,
      actor: actorOf(grant) ?? null,
      address: grant.login.connection.remoteAddress ?? "",
    });
  }

  async listUsers() {
    const users = await this.#broker.store.listIdentities();
    return {
      users: users.map((u) => ({
        name: u.name,
        keyring: [...u.keyring],
        epoch: BigInt(u.epoch),
        suspended: u.suspended,
        createdAt: BigInt(u.createdAt),
      })),
    };
  }

  async #user(name: string): Promise<IdentityRecord> {
    const user = await this.#broker.store.findIdentityByName(normalizeUsername(name));
    if (user === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user "${name}"`);
    return user;
  }

  async suspend(params: Admin_suspend_Params, ctx: CallContext) {
    const grant = this.#grant(ctx);
    const user = await this.#user(params.username);
    const epoch = await this.#broker.store.setSuspended(user.id, params.suspended, {
      actor: actorOf(grant),
      audit: auditEntry(grant, "admin", `${params.suspended ? "suspended" : "unsuspended"} ${user.name}`),
    });
    this.#broker.revokeIdentity(
      user.id,
      epoch,
      params.suspended ? "the account was suspended" : "the account changed",
    );
  }

  async setKeyring(params: Admin_setKeyring_Params, ctx: CallContext) {
    const grant = this.#grant(ctx);
    const user = await this.#user(params.username);
    const keyring = readKeyring(params.keyring);
    const epoch = await this.#broker.store.setKeyring(user.id, keyring, {
      actor: actorOf(grant),
      audit: auditEntry(grant, "admin", `keyring of ${user.name} set`),
    });
    this.#broker.revokeIdentity(user.id, epoch, "the keyring changed");
  }
}
