/**
 * Child process for bank-race.test.ts and bank-statement.test.ts. Opens the store at argv[3] and:
 * - `race <file> <count> <payerId> <from> <to>`: prints `ready`, waits for a line on stdin, then
 *   transfers ids tid(0..count−1) (1 unit each, from → to, as the payer) in concurrent chunks, and
 *   resends each chunk in the same turn (so the resend always finds the id taken); prints `applied i` or `exists i` for each first answer (and
 *   `bad i <kind>` if a resend is not `exists`), then `done`.
 * - `stream <file> <from> <to>`: prints `streaming`, then transfers 1 unit from → to (as the
 *   account's owner) with fresh ids, a few per turn and at most one turn per millisecond (so the
 *   reader's statements stay small however fast the store is), until stdin closes; then exits.
 */
import { writeSync } from "node:fs";
import { once } from "node:events";
import type { BankActor, TransferInput } from "../../src/store/index.js";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { bankOf, T0, tid } from "./bank-fixtures.js";

const [mode, file, ...args] = process.argv.slice(2);
if (file === undefined) throw new Error("usage: bank-racer.ts race|stream <store file> ...");
const store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
const bank = bankOf(store);
const print = (line: string) => writeSync(1, `${line}\n`);

if (mode === "race") {
  const [count, payerId, from, to] = args.map(Number) as [number, number, number, number];
  const payer: BankActor = { identityId: payerId, epoch: 0, perspective: "customer", facet: "pay" };
  const input = (i: number): TransferInput => ({
    id: tid(i),
    from,
    to,
    amount: 1n,
    currency: "EUR",
    memo: `race ${i}`,
  });
  print("ready");
  await once(process.stdin, "data");
  const CHUNK = 25;
  for (let start = 0; start < count; start += CHUNK) {
    const ids = Array.from({ length: Math.min(CHUNK, count - start) }, (_, k) => start + k);
    const send = () =>
      Promise.all(ids.map((i) => bank.transfer(input(i), { payer: { ownerId: payerId } }, payer, T0)));
    const [first, again] = await Promise.all([send(), send()]);
    ids.forEach((i, k) => {
      const a = first[k];
      const b = again[k];
      print(`${a?.kind} ${i}`);
      if (b?.kind !== "exists") print(`bad ${i} ${b?.kind}`);
    });
  }
  print("done");
} else if (mode === "stream") {
  const [from, to] = args.map(Number) as [number, number];
  const account = await bank.getAccount(from);
  if (account?.ownerId == null) throw new Error(`account ${from} has no owner`);
  const owner = account.ownerId;
  const payer: BankActor = { identityId: owner, epoch: 0, perspective: "customer", facet: "pay" };
  let open = true;
  process.stdin.on("end", () => {
    open = false;
  });
  process.stdin.resume();
  print("streaming");
  for (let n = 0; open; n++) {
    await Promise.all(
      [0, 1, 2].map((k) =>
        bank.transfer(
          { id: tid(n * 3 + k, 0x5eed), from, to, amount: 1n, currency: "EUR", memo: "stream" },
          { payer: { ownerId: owner } },
          payer,
          T0,
        ),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
store.close();
process.exit(0);
