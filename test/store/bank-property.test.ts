/**
 * Property tests (fast-check) of the bank store against a reference model: random turns of
 * concurrent transfers, batches, holds (open, post, void, expire), cash deposits and withdrawals
 * across several accounts and two currencies, with resent and altered ids. The store applies one
 * turn's requests in call order (one group commit), so the model replays them in that order and
 * must predict every answer exactly; afterwards every account's totals match the model, per
 * currency the posted and pending sums are 0, no no-overdraft account is overdrawn, every applied
 * id is in the transfers and the journal exactly once, and the journal verifies.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ParallaxError } from "../../src/errors.js";
import type {
  BankActor,
  PaymentPolicy,
  Receipt,
  SqliteBrokerStore,
  TransferField,
  TransferInput,
  TransferKind,
  TransferResult,
} from "../../src/store/index.js";
import type { SqliteBankRepository } from "../../src/store/sqlite/bank.js";
import { bankOf, T0, tid } from "./bank-fixtures.js";
import { TempStores } from "./fixtures.js";

const MAX = 2n ** 63n - 1n;
const TURN_MS = 1000;

let t: TempStores;
beforeEach(() => {
  t = new TempStores();
});
afterEach(() => t.cleanup());

// --- the workload ---------------------------------------------------------------------------

/** Accounts by index: 0..3 EUR (3 may overdraw), 4..5 USD; 6 is an account that does not exist. */
const OWNER = [0, 1, 2, 0, 1, 2];
const CURRENCY = ["EUR", "EUR", "EUR", "EUR", "USD", "USD"];
const ACCOUNTS_OF = [
  [0, 3],
  [1, 4],
  [2, 5],
];

type Op =
  | { t: "transfer"; from: number; to: number; amount: bigint; currency: string }
  | { t: "batch"; payer: number; legs: { from: number; to: number; amount: bigint }[] }
  | { t: "deposit"; to: number; amount: bigint }
  | { t: "withdraw"; from: number; amount: bigint }
  | { t: "hold"; from: number; to: number; amount: bigint; timeoutMs: number }
  | { t: "post"; hold: number; amount: "all" | "some" | "more" }
  | { t: "void"; hold: number }
  | { t: "expire" }
  | { t: "resend"; which: number }
  | { t: "alter"; which: number; field: "amount" | "memo" | "to" };

const amount = fc.oneof(
  { weight: 8, arbitrary: fc.bigInt({ min: 1n, max: 400n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 2n ** 60n, max: 2n ** 62n }) },
);
const account = fc.integer({ min: 0, max: 6 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant("transfer" as const),
      from: fc.integer({ min: 0, max: 5 }),
      to: account,
      amount,
      currency: fc.constantFrom("EUR", "EUR", "EUR", "USD"),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("batch" as const),
      payer: fc.integer({ min: 0, max: 2 }),
      legs: fc.array(fc.record({ from: fc.integer({ min: 0, max: 1 }), to: account, amount }), {
        minLength: 1,
        maxLength: 4,
      }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant("deposit" as const), to: fc.integer({ min: 0, max: 5 }), amount }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("withdraw" as const),
      from: fc.integer({ min: 0, max: 5 }),
      amount,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("hold" as const),
      from: fc.integer({ min: 0, max: 5 }),
      to: account,
      amount,
      timeoutMs: fc.integer({ min: 500, max: 4000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("post" as const),
      hold: fc.nat(),
      amount: fc.constantFrom("all" as const, "some" as const, "more" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("void" as const), hold: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: "expire" as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("resend" as const), which: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("alter" as const),
      which: fc.nat(),
      field: fc.constantFrom("amount" as const, "memo" as const, "to" as const),
    }),
  },
);
const workload = fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 14 });

// --- the reference model --------------------------------------------------------------------

interface Acct {
  readonly currency: string;
  readonly noOverdraft: boolean;
  dp: bigint;
  cp: bigint;
  dq: bigint;
  cq: bigint;
}

interface Stored {
  readonly input: TransferInput;
  readonly kind: TransferKind;
  readonly holdId: string | null;
  readonly receipt: Receipt;
}

interface Hold {
  readonly id: string;
  readonly from: number;
  readonly to: number;
  readonly amount: bigint;
  readonly currency: string;
  readonly memo: string;
  readonly expiresAt: number;
  state: "open" | "posted" | "voided" | "expired";
}

type Outcome = TransferResult | TransferResult[] | Receipt[] | { error: string };

const hex = (id: Uint8Array) => Buffer.from(id).toString("hex");

class Model {
  accounts = new Map<number, Acct>();
  transfers = new Map<string, Stored>();
  holds = new Map<string, Hold>();
  /** The cash accounts' numbers. */
  readonly cash = new Set<number>();
  seq = 0;

  snapshot() {
    return {
      accounts: new Map([...this.accounts].map(([k, v]) => [k, { ...v }])),
      transfers: new Map(this.transfers),
      holds: new Map([...this.holds].map(([k, v]) => [k, { ...v }])),
      seq: this.seq,
    };
  }

  restore(s: ReturnType<Model["snapshot"]>) {
    this.accounts = s.accounts;
    this.transfers = s.transfers;
    this.holds = s.holds;
    this.seq = s.seq;
  }

  #taken(input: TransferInput, kind: TransferKind, holdId: string | null): TransferResult | undefined {
    const s = this.transfers.get(hex(input.id));
    if (s === undefined) return undefined;
    const order: [TransferField, boolean][] = [
      ["to", s.input.to !== input.to],
      ["amount", s.input.amount !== input.amount],
      ["currency", s.input.currency !== input.currency],
      ["memo", s.input.memo !== input.memo],
      ["from", s.input.from !== input.from],
      ["kind", s.kind !== kind || s.holdId !== holdId],
    ];
    const field = order.find(([, differs]) => differs)?.[0];
    return field === undefined
      ? { kind: "exists", receipt: s.receipt }
      : { kind: "existsWithDifferent", field };
  }

  #record(input: TransferInput, kind: TransferKind, holdId: string | null, now: number): Receipt {
    const receipt: Receipt = {
      id: input.id,
      from: input.from,
      to: input.to,
      amount: input.amount,
      currency: input.currency,
      at: now,
      journalSeq: ++this.seq,
      kind,
    };
    this.transfers.set(hex(input.id), { input, kind, holdId, receipt });
    return receipt;
  }

  /** `counter`: a withdrawal, which must pay into a cash account (PERMISSION_DENIED otherwise). */
  pay(
    input: TransferInput,
    now: number,
    timeoutMs?: number,
    counter = false,
  ): TransferResult | { error: string } {
    const debit = this.accounts.get(input.from);
    if (debit === undefined) return { kind: "accountNotFound", number: input.from };
    const kind: TransferKind = timeoutMs === undefined ? "single" : "holdOpened";
    const seen = this.#taken(input, kind, null);
    if (seen) return seen;
    if (input.from === input.to) return { kind: "sameAccount" };
    const credit = this.accounts.get(input.to);
    if (credit === undefined) return { kind: "accountNotFound", number: input.to };
    if (debit.currency !== input.currency) return { kind: "currencyMismatch", currency: debit.currency };
    if (credit.currency !== input.currency) return { kind: "currencyMismatch", currency: credit.currency };
    if (counter && !this.cash.has(input.to)) return { error: "PARALLAX_ERR_PERMISSION_DENIED" };
    const a = input.amount;
    if (debit.dp + debit.dq + a > MAX || credit.cp + credit.cq + a > MAX) return { kind: "overflow" };
    if (debit.noOverdraft && debit.dp + debit.dq + a > debit.cp) {
      return { kind: "insufficientFunds", available: debit.cp - debit.dp - debit.dq };
    }
    if (timeoutMs === undefined) {
      debit.dp += a;
      credit.cp += a;
    } else {
      debit.dq += a;
      credit.cq += a;
      this.holds.set(hex(input.id), {
        id: hex(input.id),
        from: input.from,
        to: input.to,
        amount: a,
        currency: input.currency,
        memo: input.memo,
        expiresAt: now + timeoutMs,
        state: "open",
      });
    }
    return { kind: "applied", receipt: this.#record(input, kind, null, now) };
  }

  batch(inputs: TransferInput[], now: number): TransferResult[] {
    const before = this.snapshot();
    const out: TransferResult[] = [];
    for (const [i, input] of inputs.entries()) {
      const r = this.pay(input, now) as TransferResult;
      if (r.kind !== "applied" && r.kind !== "exists") {
        this.restore(before);
        return inputs.map((_, j) => (j === i ? r : { kind: "linkedEventFailed" }));
      }
      out.push(r);
    }
    return out;
  }

  #release(h: Hold, posted: bigint, state: Hold["state"]) {
    const debit = this.accounts.get(h.from) as Acct;
    const credit = this.accounts.get(h.to) as Acct;
    debit.dq -= h.amount;
    credit.cq -= h.amount;
    debit.dp += posted;
    credit.cp += posted;
    h.state = state;
  }

  close(
    holdId: Uint8Array,
    id: Uint8Array,
    amount: bigint,
    now: number,
    kind: "holdPosted" | "holdVoided",
  ): Outcome {
    const h = this.holds.get(hex(holdId));
    if (h === undefined) return { error: "PARALLAX_ERR_NOT_FOUND" };
    const effective = kind === "holdPosted" && amount > 0n ? amount : h.amount;
    const input: TransferInput = {
      id,
      from: h.from,
      to: h.to,
      amount: effective,
      currency: h.currency,
      memo: h.memo,
    };
    const seen = this.#taken(input, kind, h.id);
    if (seen) return seen;
    if (h.state !== "open") return { kind: "holdNotOpen", state: h.state };
    if (h.expiresAt <= now) return { kind: "holdNotOpen", state: "expired" };
    if (effective > h.amount) return { error: "PARALLAX_ERR_BAD_ARGUMENT" };
    this.#release(h, kind === "holdPosted" ? effective : 0n, kind === "holdPosted" ? "posted" : "voided");
    return {
      kind: "applied",
      receipt: this.#record(
        { ...input, amount: kind === "holdPosted" ? effective : h.amount },
        kind,
        h.id,
        now,
      ),
    };
  }

  /** The holds expiring at `now`, in the store's order; their receipts without ids (random). */
  expire(now: number): Omit<Receipt, "id">[] {
    const due = [...this.holds.values()]
      .filter((h) => h.state === "open" && h.expiresAt <= now)
      .sort((a, b) => a.expiresAt - b.expiresAt || (a.id < b.id ? -1 : 1));
    return due.map((h) => {
      this.#release(h, 0n, "expired");
      return {
        from: h.from,
        to: h.to,
        amount: h.amount,
        currency: h.currency,
        at: now,
        journalSeq: ++this.seq,
        kind: "holdExpired" as const,
      };
    });
  }

  /** Records the expiry receipts the store answered (their ids are its own). */
  adopt(receipts: Receipt[], holdIds: string[]) {
    receipts.forEach((r, i) => {
      this.transfers.set(hex(r.id), {
        input: { id: r.id, from: r.from, to: r.to, amount: r.amount, currency: r.currency, memo: "" },
        kind: "holdExpired",
        holdId: holdIds[i] as string,
        receipt: r,
      });
    });
  }
}

// --- running a workload ---------------------------------------------------------------------

interface World {
  readonly bank: SqliteBankRepository;
  readonly numbers: number[];
  readonly cash: Record<string, number>;
  readonly people: { actor: BankActor; policy: PaymentPolicy }[];
  readonly banker: BankActor;
  readonly model: Model;
}

async function world(): Promise<World> {
  const store: SqliteBrokerStore = t.open(":memory:");
  const bank = bankOf(store);
  const ids = await Promise.all(
    ["p0", "p1", "p2", "banker"].map((name) => store.createIdentity({ name, verifier: null, keyring: [] })),
  );
  const banker: BankActor = {
    identityId: ids[3]?.id as number,
    epoch: 0,
    perspective: "banker",
    facet: "cash",
  };
  const model = new Model();
  const numbers: number[] = [];
  for (let i = 0; i < 6; i++) {
    const noOverdraft = i !== 3;
    const a = await bank.openAccount(
      {
        currency: CURRENCY[i] as string,
        name: `account ${i}`,
        kind: "private",
        ownerId: ids[OWNER[i] as number]?.id as number,
        noOverdraft,
      },
      banker,
    );
    numbers.push(a.number);
    model.accounts.set(a.number, { currency: a.currency, noOverdraft, dp: 0n, cp: 0n, dq: 0n, cq: 0n });
  }
  numbers.push(9999);
  const cash: Record<string, number> = {};
  for (const c of ["EUR", "USD"]) {
    const a = await bank.cashAccount(c);
    cash[c] = a.number;
    model.accounts.set(a.number, { currency: c, noOverdraft: false, dp: 0n, cp: 0n, dq: 0n, cq: 0n });
    model.cash.add(a.number);
  }
  const people = ids.slice(0, 3).map((p) => ({
    actor: { identityId: p.id, epoch: 0, perspective: "customer", facet: "pay" } as BankActor,
    policy: { payer: { ownerId: p.id } } as PaymentPolicy,
  }));
  return { bank, numbers, cash, people, banker, model };
}

/** A request to the store and the model's prediction for it, made when it is issued. */
interface Request {
  readonly send: () => Promise<Outcome>;
  readonly predict: () => Outcome;
  /** For resends and alterations: a single transfer's input and who sends it. */
  readonly single?: { input: TransferInput; policy: PaymentPolicy; actor: BankActor; hold?: number };
  /** Runs once the answer was compared with the prediction. */
  readonly after?: (got: Outcome) => void;
}

async function outcome(p: Promise<Outcome>): Promise<Outcome> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ParallaxError) return { error: err.code };
    throw err;
  }
}

async function run(ops: Op[][]): Promise<void> {
  const w = await world();
  const { bank, model, numbers, cash } = w;
  const history: Request[] = [];
  const holdIds: Uint8Array[] = [];
  let next = 0;
  const applied = new Set<string>();
  for (const [turn, ops_] of ops.entries()) {
    const now = T0 + turn * TURN_MS;
    const requests: Request[] = [];
    for (const o of ops_) {
      const id = tid(next++);
      const single = (
        input: TransferInput,
        policy: PaymentPolicy,
        actor: BankActor,
        timeoutMs?: number,
      ): Request => ({
        send: () =>
          timeoutMs === undefined
            ? bank.transfer(input, policy, actor, now)
            : bank.openHold(input, timeoutMs, policy, actor, now),
        predict: () => model.pay(input, now, timeoutMs, "counter" in policy.payer),
        single: { input, policy, actor, ...(timeoutMs === undefined ? {} : { hold: timeoutMs }) },
      });
      const owner = (i: number) => w.people[OWNER[i] as number] as World["people"][number];
      switch (o.t) {
        case "transfer": {
          const input = {
            id,
            from: numbers[o.from] as number,
            to: numbers[o.to] as number,
            amount: o.amount,
            currency: o.currency,
            memo: "m",
          };
          requests.push(single(input, owner(o.from).policy, owner(o.from).actor));
          break;
        }
        case "hold": {
          const input = {
            id,
            from: numbers[o.from] as number,
            to: numbers[o.to] as number,
            amount: o.amount,
            currency: CURRENCY[o.from] as string,
            memo: "h",
          };
          holdIds.push(id);
          requests.push(single(input, owner(o.from).policy, owner(o.from).actor, o.timeoutMs));
          break;
        }
        case "deposit": {
          const c = CURRENCY[o.to] as string;
          const input = {
            id,
            from: cash[c] as number,
            to: numbers[o.to] as number,
            amount: o.amount,
            currency: c,
            memo: "in",
          };
          requests.push(single(input, { payer: { cash: true } }, w.banker));
          break;
        }
        case "withdraw": {
          const c = CURRENCY[o.from] as string;
          const input = {
            id,
            from: numbers[o.from] as number,
            to: cash[c] as number,
            amount: o.amount,
            currency: c,
            memo: "out",
          };
          requests.push(single(input, { payer: { counter: true } }, w.banker));
          break;
        }
        case "batch": {
          const p = w.people[o.payer] as World["people"][number];
          const inputs = o.legs.map((leg, k) => {
            const from = ACCOUNTS_OF[o.payer]?.[leg.from] as number;
            return {
              id: k === 0 ? id : tid(next++),
              from: numbers[from] as number,
              to: numbers[leg.to] as number,
              amount: leg.amount,
              currency: CURRENCY[from] as string,
              memo: "b",
            };
          });
          requests.push({
            send: () => bank.transferBatch(inputs, p.policy, p.actor, now),
            predict: () => model.batch(inputs, now),
          });
          break;
        }
        case "post":
        case "void": {
          if (holdIds.length === 0) break;
          const holdId = holdIds[o.hold % holdIds.length] as Uint8Array;
          const h = model.holds.get(hex(holdId));
          const amount =
            o.t === "void" || o.amount === "all" || h === undefined
              ? 0n
              : o.amount === "some"
                ? (h.amount + 1n) / 2n
                : h.amount + 1n;
          const bob = w.people[0] as World["people"][number];
          requests.push(
            o.t === "post"
              ? {
                  send: () => bank.postHold(holdId, id, amount, bob.actor, now),
                  predict: () => model.close(holdId, id, amount, now, "holdPosted"),
                }
              : {
                  send: () => bank.voidHold(holdId, id, bob.actor, now),
                  predict: () => model.close(holdId, id, 0n, now, "holdVoided"),
                },
          );
          break;
        }
        case "expire": {
          let due: string[] = [];
          requests.push({
            send: () => bank.expireHolds(now),
            predict: () => {
              due = [...model.holds.values()]
                .filter((h) => h.state === "open" && h.expiresAt <= now)
                .sort((a, b) => a.expiresAt - b.expiresAt || (a.id < b.id ? -1 : 1))
                .map((h) => h.id);
              return model.expire(now) as Receipt[];
            },
            after: (got) => model.adopt(got as Receipt[], due),
          });
          break;
        }
        case "resend":
        case "alter": {
          const earlier = history.filter((r) => r.single !== undefined);
          const r = earlier[o.which % Math.max(1, earlier.length)];
          if (r?.single === undefined) break;
          const s = r.single;
          const input =
            o.t === "resend"
              ? s.input
              : {
                  ...s.input,
                  ...(o.field === "amount"
                    ? { amount: s.input.amount + 1n }
                    : o.field === "memo"
                      ? { memo: `${s.input.memo}!` }
                      : { to: numbers[(numbers.indexOf(s.input.to) + 1) % 6] as number }),
                };
          requests.push(single(input, s.policy, s.actor, s.hold));
          break;
        }
      }
    }
    history.push(...requests);
    // Issued together: one group commit, applied in this order, so the model replays them so.
    const answers = await Promise.all(requests.map((r) => outcome(r.send())));
    for (const [i, r] of requests.entries()) {
      const expected = r.predict();
      const got = answers[i] as Outcome;
      if (Array.isArray(expected) && expected.length > 0 && "journalSeq" in (expected[0] as object)) {
        // Expiries: the store chose the ids.
        expect((got as Receipt[]).map(({ id: _, ...rest }) => rest)).toEqual(expected);
      } else {
        expect(got).toEqual(expected);
      }
      r.after?.(got);
      for (const one of Array.isArray(got) ? got : [got]) {
        const receipt = "receipt" in one ? one.receipt : "journalSeq" in one ? one : undefined;
        const kind = "kind" in one ? one.kind : undefined;
        if (receipt !== undefined && (kind === "applied" || kind === "holdExpired")) {
          const key = hex(receipt.id);
          expect(applied.has(key), `${key} applied twice`).toBe(false);
          applied.add(key);
        }
      }
    }
  }

  // The store's accounts are the model's, and they keep the invariants.
  for (const [number, m] of model.accounts) {
    const a = await bank.getAccount(number);
    expect(
      [a?.debitsPosted, a?.creditsPosted, a?.debitsPending, a?.creditsPending],
      `account ${number}`,
    ).toEqual([m.dp, m.cp, m.dq, m.cq]);
    if (a?.noOverdraft) expect(a.debitsPosted + a.debitsPending <= a.creditsPosted).toBe(true);
  }
  for (const x of await bank.totals())
    expect([x.currency, x.sum, x.pendingSum]).toEqual([x.currency, 0n, 0n]);
  // Every applied id once in the transfers and once in the journal, and nothing else there.
  const journal = await bank.journal(0, 100_000);
  expect(journal.map((j) => hex(j.transferId)).sort()).toEqual([...applied].sort());
  expect(journal.map((j) => j.seq)).toEqual(journal.map((_, i) => i + 1));
  for (const key of applied) {
    expect(await bank.receiptOf(Buffer.from(key, "hex"))).toEqual(model.transfers.get(key)?.receipt);
  }
  expect(await bank.verifyJournal()).toEqual({ rows: applied.size, firstBad: undefined });
  t.cleanup();
  t = new TempStores();
}

describe("the bank store against a reference model", () => {
  it("answers every request of random concurrent workloads as the model does, and keeps money conserved", async () => {
    await fc.assert(
      fc.asyncProperty(workload, (ops) => run(ops)),
      { numRuns: 60 },
    );
  }, 20_000);

  it("holds up under workloads dense in holds, resends and big amounts", async () => {
    const dense = fc.array(
      fc.array(
        fc.oneof(
          op.filter((o) => o.t === "hold" || o.t === "post" || o.t === "void" || o.t === "expire"),
          op.filter((o) => o.t === "resend" || o.t === "alter"),
          fc.record({
            t: fc.constant("deposit" as const),
            to: fc.integer({ min: 0, max: 5 }),
            amount: fc.bigInt({ min: 2n ** 61n, max: 2n ** 62n }),
          }),
          op,
        ),
        { minLength: 1, maxLength: 6 },
      ),
      { minLength: 4, maxLength: 14 },
    );
    await fc.assert(
      fc.asyncProperty(dense, (ops) => run(ops)),
      { numRuns: 40 },
    );
  }, 20_000);
});
