/**
 * The ("broker", "admin") service: an admin's Perspective lists and decides pending requests and
 * manages users. Names in its arguments are the accounts acted *on*; the admin acting is the one
 * whose login attached the perspective.
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
import type { Broker } from "./broker.js";
import { pendingInfo, readKeyring } from "./identity.js";
import { type IdentityView, Perspective, type Service } from "./perspective.js";

export class AdminService implements Service {
  readonly name = "broker";

  constructor(private readonly broker: Broker) {}

  getPerspectiveForIdentity(perspectiveName: string, identity: IdentityView): Perspective {
    if (perspectiveName !== "admin") {
      throw new ParallaxError(
        ErrorCode.NOT_FOUND,
        `the broker service has no perspective "${perspectiveName}"`,
      );
    }
    return new AdminPerspective(this.broker, identity);
  }
}

export class AdminPerspective extends Perspective implements Admin$Server {
  constructor(
    private readonly broker: Broker,
    private readonly admin: IdentityView,
  ) {
    super();
  }

  capability(): Admin {
    return Admin.server(this);
  }

  #audit(detail: string) {
    return {
      kind: "admin" as const,
      identityId: this.admin.id,
      username: this.admin.name,
      remoteAddress: "",
      detail,
    };
  }

  async listPending() {
    const all = await this.broker.store.listPending(this.broker.now());
    return { requests: all.map(pendingInfo) };
  }

  async decide(params: Admin_decide_Params) {
    await this.broker.decide(Number(params.id), params.approve, params.reason, this.admin.name);
  }

  async listUsers() {
    const users = await this.broker.store.listIdentities();
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
    const user = await this.broker.store.findIdentityByName(normalizeUsername(name));
    if (user === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user "${name}"`);
    return user;
  }

  async suspend(params: Admin_suspend_Params, _ctx: CallContext) {
    const user = await this.#user(params.username);
    const epoch = await this.broker.store.setSuspended(
      user.id,
      params.suspended,
      this.#audit(`${params.suspended ? "suspended" : "unsuspended"} ${user.name}`),
    );
    this.broker.revokeIdentity(
      user.id,
      epoch,
      params.suspended ? "the account was suspended" : "the account changed",
    );
  }

  async setKeyring(params: Admin_setKeyring_Params) {
    const user = await this.#user(params.username);
    const keyring = readKeyring(params.keyring);
    const epoch = await this.broker.store.setKeyring(
      user.id,
      keyring,
      this.#audit(`keyring of ${user.name} set`),
    );
    this.broker.revokeIdentity(user.id, epoch, "the keyring changed");
  }
}
