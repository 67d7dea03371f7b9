/**
 * The shared pieces of the SQLite store: the transaction helper (`write` / `read`, nesting as
 * savepoints, error wrapping, caller callbacks) and the epoch check services use inside their
 * own transactions. The repositories are composed here by hand, as `SqliteBrokerStore` does.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { SqliteAuditRepository } from "../../src/store/sqlite/audit.js";
import { SqliteCredentialRepository } from "../../src/store/sqlite/credentials.js";
import { callerCallback, SqliteDatabase } from "../../src/store/sqlite/database.js";
import { SqliteEpochs } from "../../src/store/sqlite/epochs.js";
import { SqliteIdentityRepository } from "../../src/store/sqlite/identities.js";
import { SqlitePendingRepository } from "../../src/store/sqlite/pending.js";
import { SqliteWalletRepository } from "../../src/store/sqlite/wallet.js";
import { bytes32, entry, TempStores, verifier, walletFor } from "./fixtures.js";

let t: TempStores;
const opened: SqliteDatabase[] = [];

function compose(file = t.file) {
  const db = SqliteDatabase.open(file, { synchronous: "NORMAL", now: () => t.time });
  opened.push(db);
  const audit = new SqliteAuditRepository(db);
  const epochs = new SqliteEpochs(db, audit);
  const identities = new SqliteIdentityRepository(db, epochs, audit);
  const credentials = new SqliteCredentialRepository(db, identities, epochs, audit);
  const pending = new SqlitePendingRepository(db, identities, credentials, audit);
  const wallet = new SqliteWalletRepository(db, identities, epochs);
  return { db, audit, identities, credentials, pending, wallet };
}

let r: ReturnType<typeof compose>;
let aliceId: number;
beforeEach(() => {
  t = new TempStores();
  r = compose();
  aliceId = r.identities.createIdentity({ name: "alice", verifier: verifier(1), keyring: [] }).id;
});
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  t.cleanup();
});

/** What `fn` throws (it must throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

const codeOf = (fn: () => unknown) => (thrown(fn) as ParallaxError).code;

describe("isCurrent and assertCurrent (the epoch check inside a transaction)", () => {
  const check = (id: number, epoch: number) => r.db.write("check", () => r.db.isCurrent(id, epoch));

  it("is true for an existing, unsuspended identity at its current epoch", () => {
    expect(check(aliceId, 0)).toBe(true);
    const epoch = r.identities.bumpEpoch(aliceId);
    expect(check(aliceId, epoch)).toBe(true);
  });

  it("is false for a stale epoch and for one ahead of the stored one", () => {
    r.identities.bumpEpoch(aliceId);
    expect(check(aliceId, 0)).toBe(false);
    expect(check(aliceId, 2)).toBe(false);
  });

  it("is false while the identity is suspended, even at the epoch the suspension made", () => {
    const suspended = r.identities.setSuspended(aliceId, true);
    expect(check(aliceId, suspended)).toBe(false);
    const lifted = r.identities.setSuspended(aliceId, false);
    expect(check(aliceId, lifted)).toBe(true);
  });

  it("is false for an identity that does not exist", () => {
    expect(check(aliceId + 100, 0)).toBe(false);
  });

  it("sees a bump made earlier in the same transaction", () => {
    expect(
      r.db.write("bump then check", () => {
        const epoch = r.identities.bumpEpoch(aliceId);
        return [r.db.isCurrent(aliceId, epoch - 1), r.db.isCurrent(aliceId, epoch)];
      }),
    ).toEqual([false, true]);
  });

  it("refuses to answer outside a write transaction (FAILED), where the answer would be stale", () => {
    expect(codeOf(() => r.db.isCurrent(aliceId, 0))).toBe(ErrorCode.FAILED);
    expect(codeOf(() => r.db.assertCurrent(aliceId, 0))).toBe(ErrorCode.FAILED);
  });

  it("asserting: passes when current, else throws REVOKED and the transaction writes nothing", () => {
    r.db.write("ok", () => r.db.assertCurrent(aliceId, 0));
    r.identities.bumpEpoch(aliceId);
    const err = thrown(() =>
      r.db.write("stale write", () => {
        r.audit.insert(entry("admin", "must not land"));
        r.db.assertCurrent(aliceId, 0);
      }),
    );
    expect(err).toBeInstanceOf(ParallaxError);
    expect(err).toMatchObject({
      code: ErrorCode.REVOKED,
      message: "the credentials changed since this login was made",
    });
    expect(r.audit.listAudit(10)).toEqual([]);

    r.identities.setSuspended(aliceId, true);
    expect(codeOf(() => r.db.write("suspended", () => r.db.assertCurrent(aliceId, 2)))).toBe(
      ErrorCode.REVOKED,
    );
    expect(codeOf(() => r.db.write("missing", () => r.db.assertCurrent(aliceId + 100, 0)))).toBe(
      ErrorCode.REVOKED,
    );
  });

  it("holds across processes: a bump committed by another connection makes the check false", () => {
    const other = compose();
    other.identities.bumpEpoch(aliceId);
    expect(check(aliceId, 0)).toBe(false);
    expect(check(aliceId, 1)).toBe(true);
  });
});

describe("actors and verifier guards: checked inside the write's own transaction", () => {
  const stale = () => ({ identityId: aliceId, epoch: 0 });

  it("a write by a login that another connection's bump made stale is refused with REVOKED", () => {
    compose().identities.bumpEpoch(aliceId);
    expect(codeOf(() => r.identities.setKeyring(aliceId, [], { actor: stale() }))).toBe(ErrorCode.REVOKED);
    expect(codeOf(() => r.credentials.addPublicKey(aliceId, bytes32(7), "laptop", { actor: stale() }))).toBe(
      ErrorCode.REVOKED,
    );
    expect(r.credentials.findPublicKey(bytes32(7))).toBeUndefined();
    expect(r.identities.findIdentityById(aliceId)?.epoch).toBe(1);
    expect(r.identities.setKeyring(aliceId, [], { actor: { identityId: aliceId, epoch: 1 } })).toBe(2);
  });

  it("sees a bump made earlier in the same transaction: the old login's nested write is undone alone", () => {
    const outcome = r.db.write("outer", () => {
      r.identities.bumpEpoch(aliceId);
      return codeOf(() => r.credentials.addPublicKey(aliceId, bytes32(7), "laptop", { actor: stale() }));
    });
    expect(outcome).toBe(ErrorCode.REVOKED);
    expect(r.identities.findIdentityById(aliceId)?.epoch).toBe(1);
    expect(r.credentials.findPublicKey(bytes32(7))).toBeUndefined();
  });

  it("assertActor: no actor (an operator's write) checks nothing; an actor outside a write is FAILED", () => {
    r.identities.bumpEpoch(aliceId);
    expect(() => r.db.assertActor(undefined)).not.toThrow();
    expect(codeOf(() => r.db.assertActor(stale()))).toBe(ErrorCode.FAILED);
    expect(codeOf(() => r.db.write("stale", () => r.db.assertActor(stale())))).toBe(ErrorCode.REVOKED);
    r.db.write("current", () => r.db.assertActor({ identityId: aliceId, epoch: 1 }));
  });

  it("the wallet guard sees a wallet stored earlier in the same transaction, and its refusal undoes it all", () => {
    r.identities.addVerifierGuard((id) => r.wallet.assertNoWallet(id));
    const err = thrown(() =>
      r.db.write("outer", () => {
        expect(r.wallet.update(aliceId, 0, walletFor(1)).kind).toBe("accepted");
        r.identities.changeVerifier(aliceId, verifier(9), { audit: entry("credential", "x", aliceId) });
      }),
    );
    expect(err).toMatchObject({ code: ErrorCode.PERMISSION_DENIED });
    expect(r.wallet.get(aliceId)).toBeUndefined();
    expect(r.identities.findIdentityById(aliceId)).toMatchObject({ verifier: verifier(1), epoch: 0 });
    expect(r.audit.listAudit(10)).toEqual([]);
    // Without a wallet the guarded change goes through.
    expect(r.identities.changeVerifier(aliceId, verifier(9))).toBe(1);
  });

  it("every guard runs, with the identity's id, before anything is written; any one refuses", () => {
    const seen: number[] = [];
    r.identities.addVerifierGuard((id) => {
      seen.push(id);
    });
    r.identities.addVerifierGuard((id) => {
      if (id === aliceId) throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "not alice's");
    });
    expect(codeOf(() => r.identities.changeVerifier(aliceId, verifier(9)))).toBe(ErrorCode.PERMISSION_DENIED);
    expect(seen).toEqual([aliceId]);
    expect(r.identities.findIdentityById(aliceId)).toMatchObject({ verifier: verifier(1), epoch: 0 });
    // A stale actor is refused before any guard is asked.
    r.identities.bumpEpoch(aliceId);
    expect(codeOf(() => r.identities.changeVerifier(aliceId, verifier(9), { actor: stale() }))).toBe(
      ErrorCode.REVOKED,
    );
    expect(seen).toEqual([aliceId]);
  });
});

describe("write: one transaction, nested writes as savepoints", () => {
  it("rolls back writes of several repositories nested in one transaction when the outer one throws", () => {
    const err = thrown(() =>
      r.db.write("outer", () => {
        const carol = r.identities.createIdentity({ name: "carol", verifier: null, keyring: [] });
        r.credentials.addPublicKey(carol.id, bytes32(7), "laptop");
        expect(r.wallet.update(aliceId, 0, walletFor(1)).kind).toBe("accepted");
        r.identities.bumpEpoch(aliceId, { audit: entry("admin", "bumped", aliceId) });
        throw new Error("the outer step failed");
      }),
    );
    expect(err).toMatchObject({ code: ErrorCode.STORAGE, message: "outer failed; nothing was changed" });
    expect(r.identities.findIdentityByName("carol")).toBeUndefined();
    expect(r.credentials.findPublicKey(bytes32(7))).toBeUndefined();
    expect(r.wallet.get(aliceId)).toBeUndefined();
    expect(r.identities.findIdentityById(aliceId)?.epoch).toBe(0);
    expect(r.audit.listAudit(10)).toEqual([]);
  });

  it("commits nested writes together with the outer transaction", () => {
    const epoch = r.db.write("outer", () => {
      expect(r.wallet.update(aliceId, 0, walletFor(1)).kind).toBe("accepted");
      return r.identities.changeVerifier(aliceId, verifier(9));
    });
    expect(epoch).toBe(1);
    expect(r.wallet.get(aliceId)?.sequence).toBe(1);
    expect(r.identities.findIdentityById(aliceId)).toMatchObject({ epoch: 1, verifier: verifier(9) });
    // Another connection sees all of it.
    expect(compose().wallet.get(aliceId)?.sequence).toBe(1);
  });

  it("undoes only a failed nested write when the outer transaction catches its error and commits", () => {
    r.credentials.addPublicKey(aliceId, bytes32(5), "phone");
    const request = r.pending.createPending({
      kind: "signUp",
      username: "dave",
      identityId: null,
      verifier: verifier(3),
      publicKey: bytes32(5),
      device: "phone",
      remoteAddress: "192.0.2.1",
      createdAt: t.time,
      expiresAt: t.time + 60_000,
    });
    const outcome = r.db.write("outer", () => {
      r.audit.insert(entry("admin", "outer row"));
      // Approving creates dave, then fails registering a key alice already has: the savepoint
      // undoes dave and the decision, not the outer row.
      const code = codeOf(() => r.pending.decidePending(request.id, true, "ok", []));
      expect(r.identities.findIdentityByName("dave")).toBeUndefined();
      return code;
    });
    expect(outcome).toBe(ErrorCode.ALREADY_EXISTS);
    expect(r.pending.findPending(request.id)?.state).toBe("pending");
    expect(r.identities.findIdentityByName("dave")).toBeUndefined();
    expect(r.audit.listAudit(10).map((a) => a.detail)).toEqual(["outer row"]);
  });

  it("names the failing operation: a nested one's own error passes through the outer one unchanged", () => {
    const err = thrown(() =>
      r.db.write("outer", () => r.identities.createIdentity({ name: "alice", verifier: null, keyring: [] })),
    );
    expect(err).toMatchObject({ code: ErrorCode.ALREADY_EXISTS });
    expect((err as Error).message).toContain('"alice"');

    const addKey = r.db.prepare<[Uint8Array, number]>(
      "INSERT INTO public_keys (public_key, identity_id, device, added_at) VALUES (?, ?, 'raw', 0)",
    );
    const unique = thrown(() =>
      r.db.write("outer", () =>
        r.db.write("inner", () => {
          addKey.run(bytes32(8), aliceId);
          addKey.run(bytes32(8), aliceId);
        }),
      ),
    );
    expect(unique).toMatchObject({ code: ErrorCode.ALREADY_EXISTS, message: "inner: it exists already" });

    const check = thrown(() =>
      r.db.write("outer", () =>
        r.db.write("inner", () =>
          r.db.prepare<[]>("INSERT INTO server_secret (id, secret) VALUES (1, x'00')").run(),
        ),
      ),
    );
    expect(check).toMatchObject({
      code: ErrorCode.STORAGE,
      message: "inner failed (SQLITE_CONSTRAINT_CHECK); nothing was changed",
    });
    expect(r.credentials.findPublicKey(bytes32(8))).toBeUndefined();
  });

  it("passes a caller callback's error through nested writes unwrapped, rolling everything back", () => {
    const mine = new Error("the caller's own failure");
    const err = thrown(() =>
      r.db.write("outer", () => {
        r.identities.bumpEpoch(aliceId);
        r.db.write("inner", () => callerCallback(() => thrower(mine)));
      }),
    );
    expect(err).toBe(mine);
    expect(r.identities.findIdentityById(aliceId)?.epoch).toBe(0);
  });

  it("does not sweep queued audit rows into an open transaction, whose rollback would lose them", async () => {
    const durable = r.audit.audit(entry("login", "queued"));
    expect(
      codeOf(() =>
        r.db.write("outer", () => {
          expect(r.audit.listAudit(10)).toEqual([]);
          throw new ParallaxError(ErrorCode.FAILED, "rolled back");
        }),
      ),
    ).toBe(ErrorCode.FAILED);
    await durable;
    expect(
      compose()
        .audit.listAudit(10)
        .map((a) => a.detail),
    ).toEqual(["queued"]);
  });

  it("refuses an async body with STORAGE, writing nothing", () => {
    const err = thrown(() =>
      r.db.write("async body", async () => {
        r.audit.insert(entry("admin", "x"));
      }),
    );
    expect(err).toMatchObject({ code: ErrorCode.STORAGE });
    expect(r.audit.listAudit(10)).toEqual([]);
  });

  it("fails with STORAGE naming the operation once the database is closed", () => {
    r.db.close();
    r.db.close();
    expect(thrown(() => r.db.write("late", () => 1))).toMatchObject({
      code: ErrorCode.STORAGE,
      message: "late: the store is closed",
    });
    expect(thrown(() => r.identities.findIdentityById(aliceId))).toMatchObject({ code: ErrorCode.STORAGE });
  });
});

function thrower(err: Error): never {
  throw err;
}
