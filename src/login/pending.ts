/**
 * PendingApproval: a sign-up or a new device key waiting for an operator or the owner (seed 002,
 * asynchronous authorization). `wait()` answers when the decision is made — the client never
 * polls. Held by the requester only; it ends with the requester's connection.
 */
import type { RpcConnection } from "../rpc/index.js";
import type { PendingRecord } from "../store/index.js";
import type { PendingApproval$Server } from "../wire/gen/broker.js";
import type { Broker } from "./broker.js";
import { pendingInfo } from "./identity.js";

export class PendingApprovalServer implements PendingApproval$Server {
  constructor(
    private readonly broker: Broker,
    private readonly connection: RpcConnection,
    private readonly pending: PendingRecord,
  ) {}

  async wait() {
    return { identity: await this.broker.waitForDecision(this.pending, this.connection) };
  }

  request() {
    return { request: pendingInfo(this.pending) };
  }
}
