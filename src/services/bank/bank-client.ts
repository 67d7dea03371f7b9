/**
 * A bank client that can be trusted with retries: the seed's `request(max_tries, backoff)`, done
 * safely. Every transfer gets its id once, before the first try; a try that fails because the
 * connection dropped (or the server was overloaded) is sent again with the same id, on the new
 * connection the ReconnectingClient made, so the bank applies it exactly once: a resend of a
 * transfer that did commit answers `exists` with the original receipt.
 *
 * Invariants: an id is never reused for another transfer by this client; a try is repeated only
 * for errors of kind `disconnected` or `overloaded` (anything else is the answer); waits between
 * tries run on the injected clock, doubling from `backoffMs`.
 *
 * Tests: test/services/bank/bank-client.test.ts
 */
import { randomFillSync } from "node:crypto";
import { type Clock, systemClock } from "../../clock.js";
import { ErrorCode, ParallaxError, toParallaxError } from "../../errors.js";
import type { AttachedPerspective, ReconnectingClient } from "../../login/reconnecting-client.js";
import type { Customer, PrivateAccount, TransferOutcome } from "../../wire/gen/bank.js";
import { TransferOutcome_Which } from "../../wire/gen/bank.js";
import { BANK_CUSTOMER } from "./bank-keys.js";

const ID_BYTES = 16;
const TIME_BYTES = 6;
/** Random bytes drawn ahead, 10 per id: one call into the system's generator per 256 ids. */
const RANDOM_BYTES = ID_BYTES - TIME_BYTES;
const pool = new Uint8Array(RANDOM_BYTES * 256);
let poolAt = pool.length;

/**
 * A fresh transfer id, laid out like a ULID: the time in ms (48 bits, big-endian), then 80 random
 * bits. Ids made later sort after earlier ones, so the ledger's index of ids grows at its end
 * instead of at random places (TigerBeetle asks for time-ordered ids for the same reason); the
 * random part keeps ids from different clients apart without any shared state. The ledger takes
 * any 16 bytes: this layout is a speed-up, not a rule.
 */
export function newTransferId(now: number = Date.now()): Uint8Array {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const id = new Uint8Array(ID_BYTES);
  let t = now;
  for (let i = TIME_BYTES - 1; i >= 0; i--) {
    id[i] = t % 256;
    t = Math.floor(t / 256);
  }
  id.set(pool.subarray(poolAt, poolAt + RANDOM_BYTES), TIME_BYTES);
  poolAt += RANDOM_BYTES;
  return id;
}

export interface BankClientOptions {
  /** Tries per request, the first included. Default 5. */
  readonly maxTries?: number;
  /** The first wait between tries, in ms; doubled per try. Default 200. */
  readonly backoffMs?: number;
  readonly clock?: Clock;
  /** Told of each retry (for logs and tests). */
  readonly onRetry?: (attempt: number, error: ParallaxError) => void;
}

export interface PaymentOrder {
  readonly to: bigint;
  readonly amount: bigint;
  readonly currency: string;
  readonly memo?: string;
  /** The transfer id; a fresh random one by default. Keep it to resend the same transfer later. */
  readonly id?: Uint8Array;
}

/** What a payment came to, with the id it was sent under. */
export interface PaymentResult {
  readonly id: Uint8Array;
  readonly outcome: TransferOutcome;
  /** True when the outcome is `applied`, or `exists` (a resend of a transfer that committed). */
  readonly committed: boolean;
  readonly tries: number;
}

export class BankClient {
  readonly #client: ReconnectingClient;
  readonly #maxTries: number;
  readonly #backoffMs: number;
  readonly #clock: Clock;
  readonly #onRetry: (attempt: number, error: ParallaxError) => void;
  #customer: AttachedPerspective<Customer> | undefined;

  constructor(client: ReconnectingClient, options: BankClientOptions = {}) {
    this.#client = client;
    this.#maxTries = options.maxTries ?? 5;
    this.#backoffMs = options.backoffMs ?? 200;
    this.#clock = options.clock ?? systemClock;
    this.#onRetry = options.onRetry ?? (() => {});
  }

  /** Attaches ("bank", "customer") through the reconnecting client (again after every reconnect). */
  async start(): Promise<void> {
    this.#customer ??= await this.#client.attach(BANK_CUSTOMER);
  }

  /** The user's account with this number, on the current connection. */
  async #account(number: bigint): Promise<PrivateAccount> {
    if (this.#customer === undefined) throw new ParallaxError(ErrorCode.FAILED, "call start() first");
    const all = (await this.#customer.current.accounts()).accounts.toArray();
    const mine = all.find((a) => a.info.number === number);
    if (mine === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `you have no account ${number}`);
    return mine.account;
  }

  /** Pays from the account `from`, retrying with the same id until it commits or is refused. */
  async pay(from: bigint, order: PaymentOrder): Promise<PaymentResult> {
    const id = order.id ?? newTransferId();
    const transfer = {
      id,
      to: order.to,
      amount: order.amount,
      currency: order.currency,
      memo: order.memo ?? "",
    };
    return this.#retry(id, async () => (await (await this.#account(from)).pay({ transfer })).outcome);
  }

  async #retry(id: Uint8Array, once: () => Promise<TransferOutcome>): Promise<PaymentResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Wait for a reconnect in progress before trying on a connection that is gone.
        await this.#client.settled();
        const outcome = await once();
        const w = outcome.which();
        const committed = w === TransferOutcome_Which.APPLIED || w === TransferOutcome_Which.EXISTS;
        return { id, outcome, committed, tries: attempt };
      } catch (err) {
        const error = toParallaxError(err);
        const transient = error.kind === "disconnected" || error.kind === "overloaded";
        if (!transient || attempt >= this.#maxTries) throw error;
        this.#onRetry(attempt, error);
        const delay = this.#backoffMs * 2 ** (attempt - 1);
        await new Promise<void>((resolve) => this.#clock.setTimer(delay, resolve));
      }
    }
  }
}
