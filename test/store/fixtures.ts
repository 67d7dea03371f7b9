/** Shared fixtures for the store tests: temp files, a settable clock, sample credentials. */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import type {
  AuditEntry,
  AuditKind,
  KeyringPair,
  ResumeTokenRecord,
  StoredVerifier,
  WalletInput,
} from "../../src/store/index.js";
import { SqliteBrokerStore } from "../../src/store/index.js";

/** A fresh temp directory; `cleanup()` closes every store opened in it and removes it. */
export class TempStores {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), "parallax-store-"));
  readonly file = path.join(this.dir, "broker.db");
  readonly #open: SqliteBrokerStore[] = [];
  /** The clock every store opened here uses; tests move it. */
  time = 1_700_000_000_000;

  /**
   * Opens a store on the clock. Behaviour tests default to synchronous NORMAL, which skips the
   * per-commit fsync; FULL (the production default) is what migrations.test.ts and the crash
   * test's writer use.
   */
  open(file = this.file, options: { synchronous?: "FULL" | "NORMAL" } = {}): SqliteBrokerStore {
    const store = SqliteBrokerStore.open(file, { synchronous: "NORMAL", ...options, now: () => this.time });
    this.#open.push(store);
    return store;
  }

  cleanup(): void {
    for (const s of this.#open) s.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function verifier(seed: number): StoredVerifier {
  return {
    salt: new Uint8Array(16).fill(seed),
    kdf: { algorithm: "argon2id", memoryKiB: 19456, iterations: 2, parallelism: 1 },
    storedKey: new Uint8Array(32).fill(seed + 1),
    serverKey: new Uint8Array(32).fill(seed + 2),
  };
}

/** 32 bytes of `n`: a public key, or a hash of a secret. */
export function bytes32(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

export const KEYRING: readonly KeyringPair[] = [
  { service: "wallet", perspective: "owner" },
  { service: "chat", perspective: "member" },
  { service: "chat", perspective: "admin" },
];
export const KEYRING_SORTED: readonly KeyringPair[] = [
  { service: "chat", perspective: "admin" },
  { service: "chat", perspective: "member" },
  { service: "wallet", perspective: "owner" },
];

export function entry(kind: AuditKind, detail: string, identityId: number | null = null): AuditEntry {
  return { kind, identityId, username: "alice", remoteAddress: "192.0.2.7", detail };
}

/** A distinct 32-byte hash for each `i` up to 2^32. */
export function otpHash(i: number): Uint8Array {
  const h = new Uint8Array(32).fill(0xab);
  new DataView(h.buffer).setUint32(0, i);
  return h;
}

/**
 * The wallet a test (or the wallet crash writer) stores as `sequence`: its bytes, length and hmac
 * all derive from the sequence (and `variant`), so a reader can tell exactly which write it sees.
 */
export function walletFor(sequence: number, variant = 0): WalletInput {
  const encryptedWallet = new Uint8Array(64 + ((sequence * 37 + variant * 11) % 2048));
  for (let i = 0; i < encryptedWallet.length; i++)
    encryptedWallet[i] = (sequence * 131 + variant + i * 7) & 0xff;
  const hmac = new Uint8Array(32).fill(0x5c ^ variant);
  new DataView(hmac.buffer).setUint32(0, sequence);
  return { sequence, encryptedWallet, hmac };
}

/** A resume token of `identityId` hashed `bytes32(hash)`, its own family's first (family `bytes32(100 + hash)`). */
export function resumeToken(
  identityId: number,
  hash: number,
  fields: Partial<Omit<ResumeTokenRecord, "identityId" | "tokenHash">> = {},
): ResumeTokenRecord {
  return {
    identityId,
    tokenHash: bytes32(hash),
    family: bytes32(100 + hash),
    epoch: 0,
    device: "phone",
    keyring: null,
    expiresAt: 1_700_000_000_000 + 60_000,
    ...fields,
  };
}

/**
 * Every row of every table (and `user_version`) of the store file, read by a connection of its
 * own, so only committed rows show: comparing two dumps proves a refused write changed nothing.
 * Rows are JSON text (byte strings as hex), sorted within each table.
 */
export function dumpFile(file: string): Record<string, string[]> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const out: Record<string, string[]> = {
      user_version: [String(db.pragma("user_version", { simple: true }))],
    };
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all();
    for (const { name } of tables) {
      const rows = db.prepare<[], Record<string, unknown>>(`SELECT * FROM "${name}"`).all();
      out[name] = rows
        .map((row) =>
          JSON.stringify(
            Object.entries(row).map(([k, v]) => [
              k,
              v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v,
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

/** Runs `fn` on a raw connection to `file` (for rows the store's API cannot reach), then closes it. */
export function withRaw<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
