/**
 * Child process for bank-crash.test.ts: opens the store at argv[2] (synchronous FULL, the
 * default), sets up a small bank and loops until killed, each round sending at once (one group
 * commit) single transfers, a two-leg batch, a hold and the post of the previous round's hold.
 * For every applied id it writes `ack <hex id>` to fd 1 synchronously once the promise resolved,
 * so every line the parent reads is a commit the store returned.
 */
import { writeSync } from "node:fs";
import type { BankActor, PaymentPolicy, TransferInput, TransferResult } from "../../src/store/index.js";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { bankOf, T0, tid } from "./bank-fixtures.js";

const file = process.argv[2];
if (file === undefined) throw new Error("usage: bank-crash-writer.ts <store file>");
const store = SqliteBrokerStore.open(file);
const bank = bankOf(store);
const banker = await store.createIdentity({ name: "banker", verifier: null, keyring: [] });
const people = await Promise.all(
  ["alice", "bob", "dave"].map((name) => store.createIdentity({ name, verifier: null, keyring: [] })),
);
const staff: BankActor = { identityId: banker.id, epoch: 0, perspective: "banker", facet: "deposit" };
const accounts = await Promise.all(
  people.map((p) =>
    bank.openAccount(
      { currency: "EUR", name: p.name, kind: "private", ownerId: p.id, noOverdraft: true },
      staff,
    ),
  ),
);
const cash = await bank.cashAccount("EUR");
for (const [i, a] of accounts.entries()) {
  const r = await bank.transfer(
    {
      id: tid(i, 0xcafe),
      from: cash.number,
      to: a.number,
      amount: 1_000_000_000n,
      currency: "EUR",
      memo: "seed",
    },
    { payer: { cash: true } },
    staff,
    T0,
  );
  if (r.kind !== "applied") throw new Error(`seed: ${r.kind}`);
}
const as = (i: number): { actor: BankActor; policy: PaymentPolicy } => {
  const p = people[i % 3] as (typeof people)[number];
  return {
    actor: { identityId: p.id, epoch: 0, perspective: "customer", facet: "pay" },
    policy: { payer: { ownerId: p.id } },
  };
};
const leg = (round: number, k: number, from: number, to: number): TransferInput => ({
  id: tid(round * 16 + k, 0xc0ffee),
  from: (accounts[from] as { number: number }).number,
  to: (accounts[to] as { number: number }).number,
  amount: BigInt(1 + ((round * 7 + k * 13) % 97)),
  currency: "EUR",
  memo: `round ${round} leg ${k}`,
});
const ack = (r: TransferResult | undefined) => {
  if (r?.kind === "applied") writeSync(1, `ack ${Buffer.from(r.receipt.id).toString("hex")}\n`);
};

let previousHold: Uint8Array | undefined;
for (let round = 0; ; round++) {
  const now = T0 + round;
  const work: Promise<void>[] = [];
  for (let k = 0; k < 4; k++) {
    const { actor, policy } = as(k);
    work.push(bank.transfer(leg(round, k, k % 3, (k + 1) % 3), policy, actor, now).then(ack));
  }
  const alice = as(0);
  work.push(
    bank
      .transferBatch([leg(round, 8, 0, 1), leg(round, 9, 0, 2)], alice.policy, alice.actor, now)
      .then((rs) => rs.forEach(ack)),
  );
  const bob = as(1);
  const hold = leg(round, 10, 1, 2);
  work.push(bank.openHold(hold, 3_600_000, bob.policy, bob.actor, now).then(ack));
  if (previousHold !== undefined) {
    work.push(bank.postHold(previousHold, tid(round * 16 + 11, 0xc0ffee), 0n, bob.actor, now).then(ack));
  }
  previousHold = hold.id;
  await Promise.all(work);
}
