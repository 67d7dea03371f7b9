/**
 * Crash consistency of the bank store: a writer (bank-crash-writer.ts) SIGKILLed in the middle of
 * a stream of group-committed transfers, batches and holds. Reopened, the file holds every
 * transfer the writer acknowledged, and no half transfer: every account's totals are exactly what
 * its journal rows and open holds say, the journal and the transfers name the same ids, the
 * per-currency sums are zero and the chain verifies.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bankOf } from "./bank-fixtures.js";
import { TempStores } from "./fixtures.js";

const root = path.resolve(import.meta.dirname, "../..");
const writer = path.join(import.meta.dirname, "bank-crash-writer.ts");
const ACKS_BEFORE_KILL = 300;

let t: TempStores;
beforeEach(() => {
  t = new TempStores();
});
afterEach(() => t.cleanup());

/** Runs the writer until it has acknowledged `acks` ids, SIGKILLs it, and returns them all. */
function runAndKill(file: string, acks: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", writer, file], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acked: string[] = [];
    let buffered = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const m = /^ack ([0-9a-f]{32})$/.exec(line);
        if (m) acked.push(m[1] as string);
      }
      if (acked.length >= acks && !child.killed) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" && acked.length >= acks) resolve(acked);
      else reject(new Error(`writer exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

interface Sums {
  debitsPosted: bigint;
  creditsPosted: bigint;
  debitsPending: bigint;
  creditsPending: bigint;
}

describe("bank crash consistency", () => {
  it("a writer killed mid-stream reopens with every acknowledged transfer and no half transfer", async () => {
    const acked = await runAndKill(t.file, ACKS_BEFORE_KILL);
    const store = t.open();
    expect(store.integrityCheck()).toEqual([]);
    const bank = bankOf(store);

    for (const id of acked) {
      expect(await bank.receiptOf(Buffer.from(id, "hex")), `acknowledged ${id}`).toBeDefined();
    }

    // What every account's totals must be, from the journal and the open holds alone.
    const db = new Database(t.file, { readonly: true });
    db.defaultSafeIntegers(true);
    const expected = new Map<bigint, Sums>();
    const sums = (n: bigint) => {
      let s = expected.get(n);
      if (s === undefined) {
        s = { debitsPosted: 0n, creditsPosted: 0n, debitsPending: 0n, creditsPending: 0n };
        expected.set(n, s);
      }
      return s;
    };
    const journal = db
      .prepare<
        [],
        { transfer_id: Buffer; kind: string; debit_account: bigint; credit_account: bigint; amount: bigint }
      >("SELECT transfer_id, kind, debit_account, credit_account, amount FROM bank_journal ORDER BY seq")
      .all();
    for (const j of journal) {
      if (j.kind === "single" || j.kind === "holdPosted") {
        sums(j.debit_account).debitsPosted += j.amount;
        sums(j.credit_account).creditsPosted += j.amount;
      }
    }
    const open = db
      .prepare<[], { debit_account: bigint; credit_account: bigint; amount: bigint }>(
        "SELECT debit_account, credit_account, amount FROM bank_transfers WHERE hold_state = 'open'",
      )
      .all();
    for (const h of open) {
      sums(h.debit_account).debitsPending += h.amount;
      sums(h.credit_account).creditsPending += h.amount;
    }
    const accounts = db
      .prepare<[], { number: bigint } & Record<string, bigint>>("SELECT * FROM bank_accounts")
      .all();
    for (const a of accounts) {
      expect(
        {
          debitsPosted: a.debits_posted,
          creditsPosted: a.credits_posted,
          debitsPending: a.debits_pending,
          creditsPending: a.credits_pending,
        },
        `account ${a.number}`,
      ).toEqual(sums(a.number));
    }

    // The journal and the transfers name the same ids, each once.
    const transferIds = db
      .prepare<[], { id: Buffer }>("SELECT id FROM bank_transfers")
      .all()
      .map((r) => r.id.toString("hex"))
      .sort();
    const journalIds = journal.map((j) => j.transfer_id.toString("hex")).sort();
    expect(journalIds).toEqual(transferIds);
    expect(new Set(journalIds).size).toBe(journalIds.length);
    db.close();

    expect((await bank.totals()).map((x) => [x.currency, x.sum, x.pendingSum])).toEqual([["EUR", 0n, 0n]]);
    expect(await bank.verifyJournal()).toEqual({ rows: journal.length, firstBad: undefined });
    // At most one group (a round of 7 or 8 events) committed without its acknowledgements written.
    expect(journal.length - 3 - acked.length).toBeLessThanOrEqual(8);
    expect(journal.length - 3).toBeGreaterThanOrEqual(acked.length);
  });
});
