/**
 * Properties of the bank over random workloads through the service, on several connections,
 * with dropped connections and resent transfers (issue 10, section 6): per currency the sum is
 * zero, no account flagged no-overdraft is negative, and every transfer id a client saw
 * acknowledged is applied exactly once — whatever the interleaving.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { attach } from "../../../src/login/index.js";
import { BANK_CUSTOMER } from "../../../src/services/bank/bank-keys.js";
import { BANK_STORE } from "../../../src/store/index.js";
import type { RpcConnection } from "../../../src/rpc/index.js";
import type { PrivateAccount, Transfer$Shape } from "../../../src/wire/gen/bank.js";
import { type BankWorld, makeBank, tid, which } from "./bank-harness.js";

let w: BankWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

type Op =
  | { kind: "pay"; from: number; to: number; amount: number; concurrent: boolean }
  | { kind: "resend"; pick: number }
  | { kind: "drop"; who: number };

const USERS = 4;
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("pay" as const),
      from: fc.integer({ min: 0, max: USERS - 1 }),
      to: fc.integer({ min: 0, max: USERS - 1 }),
      amount: fc.integer({ min: 1, max: 400 }),
      concurrent: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("resend" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("drop" as const), who: fc.integer({ min: 0, max: USERS - 1 }) }),
  },
);

describe("the bank under random workloads", () => {
  it("conserves money, never overdraws, and applies every acknowledged id exactly once", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
        w = await makeBank();
        const world = w;
        const names = Array.from({ length: USERS }, (_, i) => `user${i}`);
        const numbers: bigint[] = [];
        const accounts: PrivateAccount[] = [];
        const clients: RpcConnection[] = [];
        for (const name of names) {
          const u = await world.user(name);
          const a = await world.account(u, `${name} main`, name, 500n);
          numbers.push(a.number);
        }
        /** Logs `i` in on a new connection and fetches its account through it. */
        const connect = async (i: number) => {
          const { client, identity } = await world.h.login(names[i] as string, `${names[i]} pass`);
          const mine = (await attach(identity, BANK_CUSTOMER).accounts()).accounts.toArray();
          accounts[i] = mine[0]?.account as PrivateAccount;
          clients[i] = client;
        };
        for (let i = 0; i < USERS; i++) await connect(i);
        const sent: Array<{ from: number; transfer: Transfer$Shape; seen: Set<string> }> = [];
        const applied = new Set<string>();
        const send = async (s: (typeof sent)[number]) => {
          try {
            const o = (await (accounts[s.from] as PrivateAccount).pay({ transfer: s.transfer })).outcome;
            const kind = which(o);
            s.seen.add(kind);
            if (kind === "applied") {
              const key = Buffer.from(s.transfer.id as Uint8Array).toString("hex");
              // A second `applied` for one id would be a double spend.
              expect(applied.has(key)).toBe(false);
              applied.add(key);
            }
          } catch {
            // a call on a dropped connection: the client would resend
            s.seen.add("error");
          }
        };
        const inFlight: Promise<void>[] = [];
        for (const o of ops) {
          if (o.kind === "pay") {
            const s = {
              from: o.from,
              transfer: { id: tid(), to: numbers[o.to], amount: BigInt(o.amount), currency: "EUR", memo: "" },
              seen: new Set<string>(),
            };
            sent.push(s);
            const p = send(s);
            if (o.concurrent) inFlight.push(p);
            else await p;
          } else if (o.kind === "resend" && sent.length > 0) {
            await send(sent[o.pick % sent.length] as (typeof sent)[number]);
          } else if (o.kind === "drop") {
            // The user's connection drops with calls possibly in flight; the client comes back.
            clients[o.who]?.close();
            await Promise.allSettled(inFlight.splice(0));
            await connect(o.who);
          }
        }
        await Promise.allSettled(inFlight);
        // Resend everything once more, as a client would after any doubt: nothing applies twice.
        for (const s of sent) await send(s);
        const ledger = world.h.store.repository(BANK_STORE);
        for (const t of (await ledger?.totals()) ?? []) {
          expect(t.sum).toBe(0n);
          expect(t.pendingSum).toBe(0n);
        }
        for (const n of numbers) {
          const a = await ledger?.getAccount(Number(n));
          expect((a?.creditsPosted ?? 0n) - (a?.debitsPosted ?? 0n)).toBeGreaterThanOrEqual(0n);
        }
        for (const s of sent) {
          const r = await ledger?.receiptOf(s.transfer.id as Uint8Array);
          const acknowledged = s.seen.has("applied") || s.seen.has("exists");
          expect(r !== undefined).toBe(acknowledged);
        }
        expect((await ledger?.verifyJournal())?.firstBad).toBeUndefined();
        await world.h.close();
        w = undefined;
      }),
      { numRuns: 15 },
    );
  }, 60_000);
});
