/** Shared fixtures for the bank store tests: a seeded ledger, ids, actors and exact dumps. */
import Database from "better-sqlite3";
import type {
  BankAccountRecord,
  BankActor,
  IdentityRecord,
  PaymentPolicy,
  SqliteBrokerStore,
  TransferInput,
} from "../../src/store/index.js";
import { BANK_STORE } from "../../src/store/index.js";
import type { SqliteBankRepository } from "../../src/store/sqlite/bank.js";
import { SqliteBankRepository as Repository } from "../../src/store/sqlite/bank.js";

export const T0 = 1_700_000_000_000;

/** The store's bank repository (the test fails if it has none). */
export function bankOf(store: SqliteBrokerStore): SqliteBankRepository {
  const bank = store.repository(BANK_STORE);
  if (!(bank instanceof Repository)) throw new Error("this store has no SQLite bank repository");
  return bank;
}

/** A distinct 16-byte transfer id for each `n` (and `tag`, for separate id spaces). */
export function tid(n: number, tag = 0): Uint8Array {
  const id = new Uint8Array(16);
  const v = new DataView(id.buffer);
  v.setUint32(0, tag);
  v.setBigUint64(8, BigInt(n));
  return id;
}

export function actor(identity: IdentityRecord, perspective = "customer", facet = "pay"): BankActor {
  return { identityId: identity.id, epoch: identity.epoch, perspective, facet };
}

/** Every row of every bank table, read exactly (bigint) by a connection of its own. */
export function dumpBank(file: string): Record<string, string[]> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.defaultSafeIntegers(true);
  try {
    const out: Record<string, string[]> = {};
    const tables = db
      .prepare<[], { name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'bank_%' ORDER BY name",
      )
      .all();
    for (const { name } of tables) {
      out[name] = db
        .prepare<[], Record<string, unknown>>(`SELECT * FROM "${name}"`)
        .all()
        .map((row) =>
          JSON.stringify(
            Object.entries(row).map(([k, v]) => [
              k,
              v instanceof Uint8Array ? Buffer.from(v).toString("hex") : typeof v === "bigint" ? `${v}` : v,
            ]),
          ),
        )
        .sort();
    }
    return out;
  } finally {
    db.close();
  }
}

/**
 * A small bank: alice and bob with private EUR accounts (no overdraft), carol with a USD one, a
 * banker, and the EUR and USD cash accounts; alice holds `funds` EUR, carol `funds` USD.
 */
export interface Ledger {
  readonly bank: SqliteBankRepository;
  readonly alice: IdentityRecord;
  readonly bob: IdentityRecord;
  readonly carol: IdentityRecord;
  readonly banker: IdentityRecord;
  readonly a: BankAccountRecord;
  readonly b: BankAccountRecord;
  readonly c: BankAccountRecord;
  readonly cashEur: BankAccountRecord;
  readonly cashUsd: BankAccountRecord;
  /** A transfer from alice's account, overridable. */
  readonly pay: (fields?: Partial<TransferInput>) => TransferInput;
  /** Alice paying from her own account. */
  readonly asAlice: BankActor;
  readonly alicePolicy: PaymentPolicy;
  readonly bankerActor: BankActor;
  /** Cash in to `account` (currency taken from it) by the banker, under the id tid(n, 0xdead). */
  readonly deposit: (account: BankAccountRecord, amount: bigint, n: number) => Promise<void>;
}

export async function seedLedger(store: SqliteBrokerStore, funds = 1000n): Promise<Ledger> {
  const bank = bankOf(store);
  const alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
  const bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
  const carol = await store.createIdentity({ name: "carol", verifier: null, keyring: [] });
  const banker = await store.createIdentity({ name: "banker", verifier: null, keyring: [] });
  const bankerActor = actor(banker, "banker", "deposit");
  const open = (owner: IdentityRecord, currency: string) =>
    bank.openAccount(
      { currency, name: `${owner.name} ${currency}`, kind: "private", ownerId: owner.id, noOverdraft: true },
      bankerActor,
    );
  const a = await open(alice, "EUR");
  const b = await open(bob, "EUR");
  const c = await open(carol, "USD");
  const cashEur = await bank.cashAccount("EUR");
  const cashUsd = await bank.cashAccount("USD");
  const deposit = async (account: BankAccountRecord, amount: bigint, n: number, tag = 0xdead) => {
    const cash = account.currency === "EUR" ? cashEur : await bank.cashAccount(account.currency);
    const r = await bank.transfer(
      {
        id: tid(n, tag),
        from: cash.number,
        to: account.number,
        amount,
        currency: account.currency,
        memo: "cash in",
      },
      { payer: { cash: true } },
      bankerActor,
      T0,
    );
    if (r.kind !== "applied") throw new Error(`deposit ${n}: ${r.kind}`);
  };
  if (funds > 0n) {
    // The seed's own deposits have ids of their own, apart from the tests' `deposit(…, n)`.
    await deposit(a, funds, 1, 0xbeef);
    await deposit(c, funds, 2, 0xbeef);
  }
  return {
    bank,
    alice,
    bob,
    carol,
    banker,
    a: (await bank.getAccount(a.number)) as BankAccountRecord,
    b,
    c: (await bank.getAccount(c.number)) as BankAccountRecord,
    cashEur,
    cashUsd,
    pay: (fields = {}) => ({
      id: tid(1),
      from: a.number,
      to: b.number,
      amount: 100n,
      currency: "EUR",
      memo: "rent",
      ...fields,
    }),
    asAlice: actor(alice),
    alicePolicy: { payer: { ownerId: alice.id } },
    bankerActor,
    deposit: (account, amount, n) => deposit(account, amount, n),
  };
}

/** Posted balance (credits − debits). */
export function balance(a: BankAccountRecord | undefined): bigint {
  if (a === undefined) throw new Error("no such account");
  return a.creditsPosted - a.debitsPosted;
}
