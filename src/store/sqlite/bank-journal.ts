/**
 * The bank journal's hash chain: how a row is encoded and hashed, and how a chain is verified.
 * It depends on nothing but `node:crypto`, so an offline tool (`parallax bank verify`) can read
 * the `bank_journal` table of a copied file and run `verifyChain` over its rows.
 *
 * The encoding (version 1), fixed forever for rows already written:
 *
 *     hash(row) = SHA-256(prev_hash ‖ field(seq) ‖ field(transfer_id) ‖ field(kind)
 *                         ‖ field(debit_account) ‖ field(credit_account) ‖ field(amount)
 *                         ‖ field(currency) ‖ field(at) ‖ field(identity_id) ‖ field(perspective)
 *                         ‖ field(facet) ‖ field(maker_id) ‖ field(memo))
 *     field(NULL)    = FF FF FF FF                                   (only maker_id may be NULL)
 *     field(integer) = 00 00 00 08 ‖ the value as 8 bytes, big-endian two's complement
 *     field(text)    = u32be(byte length) ‖ its UTF-8 bytes
 *     field(blob)    = u32be(byte length) ‖ its bytes
 *
 * The columns are those of `bank_journal` in that order (`debit_account` and `credit_account` are
 * the journal's "from" and "to"); every column but `prev_hash` and `hash` is covered. The first
 * row (seq 1) has `prev_hash` = 32 zero bytes; row n has row n−1's `hash`; seq runs 1, 2, 3, …
 *
 * Invariants: `verifyChain` names the first row whose stored hash is not the hash of its columns,
 * whose `prev_hash` is not the previous row's `hash`, or whose seq does not follow the previous
 * one; so changing, inserting or deleting any row but the last ones is found. Cutting rows off the
 * end is not (no row after them is left to disagree): compare the head `hash` with one kept
 * elsewhere to detect that.
 *
 * Tests: test/store/bank-journal.test.ts
 */
import { hash } from "node:crypto";

/** A journal row as stored, integers as bigint (read with `safeIntegers`). */
export interface JournalRow {
  readonly seq: bigint;
  readonly transfer_id: Uint8Array;
  readonly kind: string;
  readonly debit_account: bigint;
  readonly credit_account: bigint;
  readonly amount: bigint;
  readonly currency: string;
  readonly at: bigint;
  readonly identity_id: bigint;
  readonly perspective: string;
  readonly facet: string;
  readonly maker_id: bigint | null;
  readonly memo: string;
  readonly prev_hash: Uint8Array;
  readonly hash: Uint8Array;
}

/** The `prev_hash` of the first row. */
export const GENESIS_HASH: Uint8Array = new Uint8Array(32);

const INT_FIELD_BYTES = 12;

/**
 * Where rows are encoded for hashing: one buffer, reused (hashing runs synchronously, so no two
 * encodings overlap), grown when a row needs more. Starts with room for `prev_hash`.
 */
let scratch = Buffer.allocUnsafe(1024);
/** `scratch` as a DataView: its 64-bit writes are native, where Buffer's do bigint arithmetic. */
let view = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);

function putInt(at: number, v: bigint): number {
  view.setUint32(at, 8);
  view.setBigInt64(at + 4, v);
  return at + INT_FIELD_BYTES;
}

function putBytes(at: number, v: Uint8Array): number {
  scratch.writeUInt32BE(v.length, at);
  scratch.set(v, at + 4);
  return at + 4 + v.length;
}

function putText(at: number, v: string): number {
  const n = scratch.write(v, at + 4, "utf8");
  scratch.writeUInt32BE(n, at);
  return at + 4 + n;
}

/**
 * Writes `prefix` then the encoding of `row` (see the header) into `scratch` and returns the end
 * offset. Text may take up to 3 bytes per UTF-16 unit, so the room checked first covers any row.
 */
function encodeInto(prefix: Uint8Array, row: Omit<JournalRow, "prev_hash" | "hash">): number {
  const texts =
    row.kind.length + row.currency.length + row.perspective.length + row.facet.length + row.memo.length;
  const most = prefix.length + 7 * INT_FIELD_BYTES + 6 * 4 + row.transfer_id.length + 3 * texts;
  if (scratch.length < most) {
    scratch = Buffer.allocUnsafe(Math.max(most, scratch.length * 2));
    view = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
  }
  scratch.set(prefix, 0);
  let at = putInt(prefix.length, row.seq);
  at = putBytes(at, row.transfer_id);
  at = putText(at, row.kind);
  at = putInt(at, row.debit_account);
  at = putInt(at, row.credit_account);
  at = putInt(at, row.amount);
  at = putText(at, row.currency);
  at = putInt(at, row.at);
  at = putInt(at, row.identity_id);
  at = putText(at, row.perspective);
  at = putText(at, row.facet);
  if (row.maker_id === null) {
    scratch.writeUInt32BE(0xffffffff, at);
    at += 4;
  } else at = putInt(at, row.maker_id);
  return putText(at, row.memo);
}

const NO_PREFIX = new Uint8Array(0);

/** The encoding of `row` (see the header), in a buffer of its own. */
export function encodeJournalRow(row: Omit<JournalRow, "prev_hash" | "hash">): Buffer {
  return Buffer.from(scratch.subarray(0, encodeInto(NO_PREFIX, row)));
}

/** The hash of `row` (every column but `prev_hash` and `hash`) chained to `prevHash`. */
export function journalHash(prevHash: Uint8Array, row: Omit<JournalRow, "prev_hash" | "hash">): Uint8Array {
  const end = encodeInto(prevHash, row);
  return new Uint8Array(hash("sha256", scratch.subarray(0, end), "buffer"));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Recomputes the chain over `rows` (in seq order): how many there are and the seq of the first
 * bad one (see the header), if any.
 */
export function verifyChain(rows: Iterable<JournalRow>): { rows: number; firstBad: number | undefined } {
  let prev = GENESIS_HASH;
  let expectedSeq = 1n;
  let count = 0;
  let firstBad: number | undefined;
  for (const row of rows) {
    count++;
    if (firstBad === undefined) {
      const ok =
        row.seq === expectedSeq &&
        equal(row.prev_hash, prev) &&
        equal(journalHash(row.prev_hash, row), row.hash);
      if (!ok) firstBad = Number(row.seq);
    }
    prev = row.hash;
    expectedSeq = row.seq + 1n;
  }
  return { rows: count, firstBad };
}
