/**
 * PendingApproval: a sign-up or a new device key waiting for an operator or the owner (seed 002,
 * asynchronous authorization). `wait()` answers when the decision is made or the request expires
 * — the client never polls. Held by the requester only; it ends with the requester's connection.
 *
 * Invariant: a device request's PendingApproval is bound to the key whose signature its holder
 * proved; it shows that request only and resolves only with a login of that key.
 *
 * Tests: test/login/pending.test.ts
 */
import type { RpcConnection } from "../rpc/index.js";
import type { PendingRecord } from "../store/index.js";
import type { PendingApproval$Server } from "../wire/gen/broker.js";
import type { Broker } from "./broker.js";
import { pendingInfo } from "./broker-wire.js";

export class PendingApprovalServer implements PendingApproval$Server {
  constructor(
    private readonly broker: Broker,
    private readonly connection: RpcConnection,
    private readonly pending: PendingRecord,
    /** Device requests: the key the requester proved it holds. Null for sign-ups. */
    private readonly publicKey: Uint8Array | null,
  ) {}

  async wait() {
    return { identity: await this.broker.waitForDecision(this.pending, this.connection, this.publicKey) };
  }

  request() {
    return { request: pendingInfo(this.pending) };
  }
}
