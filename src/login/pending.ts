/**
 * PendingApproval: a sign-up or a new device key waiting for an operator or the owner (seed 002,
 * asynchronous authorization). `wait()` answers when the decision is made — the client never
 * polls. Held by the requester only; it ends with the requester's connection.
 */
import { ErrorCode, ParallaxError } from "../errors.js";
import type { RpcConnection } from "../rpc/index.js";
import type { PendingRecord } from "../store/index.js";
import { type PendingApproval$Server, PendingKind } from "../wire/gen/broker.js";
import type { Broker } from "./broker.js";
import { pendingInfo } from "./identity.js";

export class PendingApprovalServer implements PendingApproval$Server {
  /** `request` null: an unknown user's device key — the same shape, but nothing waits behind it. */
  constructor(
    private readonly broker: Broker,
    private readonly connection: RpcConnection,
    private readonly pending: PendingRecord | null,
  ) {}

  async wait() {
    if (this.pending === null) {
      throw new ParallaxError(ErrorCode.REJECTED, "the request expired");
    }
    return { identity: await this.broker.waitForDecision(this.pending, this.connection) };
  }

  request() {
    if (this.pending === null) {
      return {
        request: {
          id: 0n,
          kind: PendingKind.DEVICE_KEY,
          username: "",
          device: "new device",
          publicKey: new Uint8Array(0),
          createdAt: 0n,
          remoteAddress: "",
        },
      };
    }
    return { request: pendingInfo(this.pending) };
  }
}
