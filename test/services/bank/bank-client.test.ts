/**
 * BankClient against a real broker over WebSocket, with its store on a temporary folder, through
 * a ReconnectingClient: a payment whose connection the server drops right after it committed
 * (before the answer leaves) is resent with the same id on the new connection and applies once;
 * one dropped before it reached the ledger applies on the resend; a refusal is an answer, never
 * retried; retries wait on the injected clock, doubling, and give up after `maxTries` with the
 * last error. The drop is made on the server's side, by the service's own ledger: the test wraps
 * the bank's repository so that its `transfer` closes the server's connections at that instant.
 * Every test ends by closing the client and asserting the server kept nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import { ManualClock } from "../../../src/clock.js";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import { loginWithPassword, makeVerifier } from "../../../src/login/client-login.js";
import { PerUserService } from "../../../src/login/index.js";
import { type ReconnectEvent, ReconnectingClient } from "../../../src/login/reconnecting-client.js";
import { type BrokerServer, startBroker } from "../../../src/server.js";
import { BankClient } from "../../../src/services/bank/bank-client.js";
import { bank, type BankService } from "../../../src/services/bank/bank-service.js";
import { lobby } from "../../../src/services/lobby/lobby-service.js";
import {
  BANK_STORE,
  type BankActor,
  type BankStore,
  type PaymentPolicy,
  SqliteBrokerStore,
  type TransferInput,
  type TransferResult,
} from "../../../src/store/index.js";
import { rejection } from "../../helpers/errors.js";
import { EMPTY_STATS } from "../../helpers/rpc-stats.js";
import { waitFor } from "../../helpers/wait.js";
import { kdf } from "../../login/harness.js";
import { BANKER_KEYRING, CUSTOMER_KEYRING, tid, which } from "./bank-harness.js";

/** What the test does at the ledger's `transfer`, around the real one. */
interface LedgerHook {
  /** Before the real transfer; throwing stands for a failure before the ledger saw it. */
  before?: (input: TransferInput) => void;
  /** After the real transfer committed, before its answer goes back. */
  after?: (input: TransferInput, result: TransferResult) => void;
}

/** The bank service, on a ledger whose `transfer` calls the test's hook (and records each call). */
function hookedBank(hook: LedgerHook, calls: TransferInput[]) {
  const module = bank();
  return {
    ...module,
    create(ctx: Parameters<typeof module.create>[0]): BankService {
      const real = ctx.repository;
      const ledger = new Proxy(real, {
        get(target, prop) {
          if (prop === "transfer") {
            return async (input: TransferInput, policy: PaymentPolicy, actor: BankActor, now: number) => {
              calls.push(input);
              hook.before?.(input);
              const result = await target.transfer(input, policy, actor, now);
              hook.after?.(input, result);
              return result;
            };
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      return module.create({ ...ctx, repository: ledger });
    },
  };
}

let folder: string | undefined;
let server: BrokerServer | undefined;
let store: SqliteBrokerStore | undefined;
afterEach(async () => {
  await server?.close();
  store?.close();
  if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  server = undefined;
  store = undefined;
  folder = undefined;
});

/** Closes every connection the server holds, as a network failure would. */
function dropAll(reason = "network blip"): void {
  for (const c of server?.connections ?? []) c.close(reason);
}

async function setup() {
  folder = mkdtempSync(path.join(tmpdir(), "parallax-bank-client-"));
  store = SqliteBrokerStore.open(path.join(folder, "parallax.db"));
  const hook: LedgerHook = {};
  const calls: TransferInput[] = [];
  server = await startBroker({
    port: 0,
    tcpPort: null,
    store,
    signUp: "closed",
    services: [lobby(), hookedBank(hook, calls)],
  });
  // The store itself (not the service's hooked view of it), for setting up and checking.
  const bankStore = store.repository(BANK_STORE) as BankStore;
  // Alice and Bob with an account each; a teller's cash deposit of 1000 into Alice's.
  const { verifier } = await makeVerifier("alice password", { kdf });
  const alice = await store.createIdentity({ name: "alice", verifier, keyring: CUSTOMER_KEYRING });
  const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: CUSTOMER_KEYRING });
  const teller = await store.createIdentity({ name: "teller", verifier: null, keyring: BANKER_KEYRING });
  const open = (ownerId: number, name: string) =>
    bankStore.openAccount({ currency: "EUR", name, kind: "private", ownerId, noOverdraft: true });
  const a = await open(alice.id, "alice main");
  const b = await open(bob.id, "bob main");
  const cash = await bankStore.cashAccount("EUR");
  const deposit = await bankStore.transfer(
    { id: tid(), from: cash.number, to: a.number, amount: 1000n, currency: "EUR", memo: "opening cash" },
    { payer: { cash: true } },
    { identityId: teller.id, epoch: teller.epoch, perspective: "banker", facet: "deposit" },
    Date.now(),
  );
  expect(deposit.kind).toBe("applied");
  const events: ReconnectEvent[] = [];
  const listeners: Array<() => void> = [];
  const url = server.url;
  const reconnecting = new ReconnectingClient({
    connect: () => connect(url),
    login: async (root) => (await loginWithPassword(root, "alice", "alice password", { kdf })).identity,
    device: "test laptop",
    baseDelayMs: 5,
    onEvent: (e) => {
      events.push(e);
      for (const l of listeners.splice(0)) l();
    },
  });
  const clock = new ManualClock();
  const retries: Array<{ attempt: number; error: ParallaxError; at: number }> = [];
  const retryListeners: Array<() => void> = [];
  const client = new BankClient(reconnecting, {
    clock,
    maxTries: 3,
    backoffMs: 100,
    onRetry: (attempt, error) => {
      retries.push({ attempt, error, at: clock.now() });
      for (const l of retryListeners.splice(0)) l();
    },
  });
  await reconnecting.start();
  await client.start();
  /** Resolves once `n` retries have been announced. */
  const retried = (n: number) =>
    new Promise<void>((resolve) => {
      const check = (): void => (retries.length >= n ? resolve() : void retryListeners.push(check));
      check();
    });
  /** Resolves once the client has resumed `n` times. */
  const resumed = (n: number) =>
    new Promise<void>((resolve) => {
      const check = (): void =>
        events.filter((e) => e.type === "connected" && e.resumed).length >= n
          ? resolve()
          : void listeners.push(check);
      check();
    });
  const balance = async (number: number): Promise<bigint> => {
    const acc = await bankStore.getAccount(number);
    return (acc?.creditsPosted ?? 0n) - (acc?.debitsPosted ?? 0n);
  };
  return {
    hook,
    calls,
    reconnecting,
    client,
    clock,
    retries,
    retried,
    resumed,
    ledger: bankStore,
    alice: BigInt(a.number),
    bob: BigInt(b.number),
    balance,
    events,
  };
}

/**
 * Closes the client, waits until the server has seen every connection close, then asserts it
 * kept nothing: empty tables on the connections that were open, no login, an idle broker, no
 * per-user service state, no bank watcher.
 */
async function closeAndExpectNoLeaks(client: { close(): void }): Promise<void> {
  const s = server as BrokerServer;
  const open = [...s.connections];
  client.close();
  await waitFor(() => {
    expect(s.connections.size).toBe(0);
    expect(s.broker.liveIdentities).toBe(0);
    expect(s.broker.idle).toBe(true);
  });
  for (const c of open) expect(c.stats()).toEqual(EMPTY_STATS);
  for (const name of ["lobby", "bank", "broker"]) {
    const service = s.broker.service(name);
    if (service instanceof PerUserService) {
      expect({ service: name, users: service.userCount, attached: service.attachmentCount }).toEqual({
        service: name,
        users: 0,
        attached: 0,
      });
    }
  }
  expect((s.broker.service("bank") as BankService).watcherCount).toBe(0);
}

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a !== undefined && b !== undefined && Buffer.compare(a, b) === 0;

describe("BankClient", () => {
  it("resends a payment whose answer was lost with a dropped connection, with the same id: it applies once", async () => {
    const t = await setup();
    let dropped = false;
    const seen: string[] = [];
    t.hook.after = (_input, result) => {
      // The transfer is committed and durable; the connection dies before the answer leaves.
      seen.push(result.kind);
      if (!dropped) dropAll();
      dropped = true;
    };
    const paying = t.client.pay(t.alice, { to: t.bob, amount: 300n, currency: "EUR", memo: "rent" });
    await t.retried(1);
    expect(t.retries[0]?.attempt).toBe(1);
    expect(t.retries[0]?.error.code).toBe(ErrorCode.DISCONNECTED);
    const first = t.calls[0];
    expect(await t.ledger.receiptOf(first?.id ?? tid())).toMatchObject({ amount: 300n });
    // Reconnected and re-attached: still nothing is resent before the backoff has passed on the clock.
    await t.resumed(1);
    expect(t.calls).toHaveLength(1);
    t.clock.advance(99);
    expect(t.calls).toHaveLength(1);
    t.clock.advance(1);
    const result = await paying;
    expect(result.tries).toBe(2);
    expect(result.committed).toBe(true);
    expect(which(result.outcome)).toBe("exists");
    expect(t.calls).toHaveLength(2);
    expect(seen).toEqual(["applied", "exists"]);
    expect(same(t.calls[1]?.id, first?.id)).toBe(true);
    expect(same(result.id, first?.id)).toBe(true);
    // The ledger shows one transfer, and the balances moved once.
    const journal = await t.ledger.journal(1, 100);
    expect(journal.filter((row) => same(row.transferId, first?.id))).toHaveLength(1);
    expect(journal).toHaveLength(2);
    expect(result.outcome.exists.journalSeq).toBe(2n);
    expect(await t.balance(Number(t.alice))).toBe(700n);
    expect(await t.balance(Number(t.bob))).toBe(300n);
    expect((await t.ledger.totals()).map((x) => x.sum)).toEqual([0n]);
    await closeAndExpectNoLeaks(t.reconnecting);
  });

  it("resends a payment lost before it reached the ledger: the resend applies it", async () => {
    const t = await setup();
    let dropped = false;
    t.hook.before = () => {
      if (dropped) return;
      dropped = true;
      dropAll();
      throw new ParallaxError(ErrorCode.DISCONNECTED, "the connection dropped before the ledger saw it");
    };
    const paying = t.client.pay(t.alice, { to: t.bob, amount: 250n, currency: "EUR" });
    await t.retried(1);
    expect(await t.ledger.receiptOf(t.calls[0]?.id ?? tid())).toBeUndefined();
    t.clock.advance(100);
    const result = await paying;
    expect([result.tries, result.committed, which(result.outcome)]).toEqual([2, true, "applied"]);
    expect(same(t.calls[1]?.id, t.calls[0]?.id)).toBe(true);
    expect(await t.ledger.journal(1, 100)).toHaveLength(2);
    expect(await t.balance(Number(t.alice))).toBe(750n);
    expect(await t.balance(Number(t.bob))).toBe(250n);
    await closeAndExpectNoLeaks(t.reconnecting);
  });

  it("does not retry a refusal: insufficient funds is the answer", async () => {
    const t = await setup();
    const result = await t.client.pay(t.alice, { to: t.bob, amount: 1001n, currency: "EUR" });
    expect([result.tries, result.committed, which(result.outcome)]).toEqual([1, false, "insufficientFunds"]);
    expect(result.outcome.insufficientFunds).toBe(1000n);
    expect(t.calls).toHaveLength(1);
    expect(t.retries).toEqual([]);
    expect(t.clock.pendingTimers).toBe(0);
    // Nor an error that is not transient: an unknown account of the user's.
    const notMine = await rejection(t.client.pay(t.bob, { to: t.alice, amount: 1n, currency: "EUR" }));
    expect(notMine.code).toBe(ErrorCode.NOT_FOUND);
    expect(t.retries).toEqual([]);
    expect(await t.balance(Number(t.alice))).toBe(1000n);
    await closeAndExpectNoLeaks(t.reconnecting);
  });

  it("waits on the injected clock, doubling, and gives up after maxTries with the last error", async () => {
    const t = await setup();
    let n = 0;
    t.hook.before = () => {
      n++;
      throw new ParallaxError(ErrorCode.QUOTA, `the ledger is busy (try ${n})`);
    };
    const start = t.clock.now();
    const paying = rejection(t.client.pay(t.alice, { to: t.bob, amount: 5n, currency: "EUR" }));
    await t.retried(1);
    expect(t.calls).toHaveLength(1);
    t.clock.advance(99);
    expect(t.calls).toHaveLength(1);
    t.clock.advance(1);
    await t.retried(2);
    expect(t.calls).toHaveLength(2);
    t.clock.advance(199);
    expect(t.calls).toHaveLength(2);
    t.clock.advance(1);
    const err = await paying;
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("the ledger is busy (try 3)");
    expect(t.calls).toHaveLength(3);
    expect(t.calls.every((c) => same(c.id, t.calls[0]?.id))).toBe(true);
    expect(
      t.retries.map((r) => [r.attempt, r.at - start, r.error.message.includes(`(try ${r.attempt})`)]),
    ).toEqual([
      [1, 0, true],
      [2, 100, true],
    ]);
    expect(t.clock.pendingTimers).toBe(0);
    expect(await t.ledger.journal(1, 100)).toHaveLength(1);
    await closeAndExpectNoLeaks(t.reconnecting);
  });
});
