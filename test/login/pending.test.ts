import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { signUp } from "../../src/login/client-login.js";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { Admin } from "../../src/wire/gen/broker.js";
import { ADMIN_KEYRING, type Harness, kdf, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

async function adminOf(harness: Harness): Promise<Admin> {
  await harness.addUser("root", "root password", ADMIN_KEYRING);
  const { identity } = await harness.login("root", "root password");
  return (
    await identity.attach({ service: "broker", perspective: "admin", client: null })
  ).perspective.castAs(Admin);
}

describe("sign-up by approval (asynchronous authorization)", () => {
  it("answers pending; wait() resolves with the Identity when an admin approves, without polling", async () => {
    h = await makeHarness({ signUp: "approval" });
    const admin = await adminOf(h);
    const res = await signUp(h.connect().root, "bob", "bob password", { kdf });
    expect(res.pending).toBeDefined();
    let settled = false;
    const waiting = res.pending?.wait().then((r) => {
      settled = true;
      return r;
    });
    const listed = (await admin.listPending()).requests.toArray();
    expect(listed.map((r) => r.username)).toEqual(["bob"]);
    expect(settled).toBe(false);
    // the name is held while pending
    expect((await rejection(signUp(h.connect().root, "bob", "another", { kdf }))).code).toBe(
      ErrorCode.ALREADY_EXISTS,
    );
    await admin.decide({ id: listed[0]?.id ?? 0n, approve: true, reason: "" });
    const identity = (await waiting)?.identity;
    expect((await identity?.whoami())?.info.name).toBe("bob");
    // and bob logs in with his password from now on
    const again = await h.login("bob", "bob password");
    expect((await again.identity.whoami()).info.name).toBe("bob");
    const kinds = (await h.store.listAudit(20)).map((a) => a.kind);
    expect(kinds).toContain("pending");
    expect(kinds).toContain("approved");
  });

  it("fails wait() with REJECTED and the reason when an admin rejects", async () => {
    h = await makeHarness({ signUp: "approval" });
    const admin = await adminOf(h);
    const res = await signUp(h.connect().root, "carol", "carol password", { kdf });
    const waiting = res.pending?.wait();
    const [request] = (await admin.listPending()).requests.toArray();
    await admin.decide({ id: request?.id ?? 0n, approve: false, reason: "unknown person" });
    const err = await rejection(waiting ?? Promise.resolve());
    expect(err.code).toBe(ErrorCode.REJECTED);
    expect(err.message).toBe("rejected: unknown person");
    expect(await h.store.findIdentityByName("carol")).toBeUndefined();
    // deciding twice is refused
    expect((await rejection(admin.decide({ id: request?.id ?? 0n, approve: true, reason: "" }))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
  });

  it("refuses the admin perspective to a user without it on the keyring", async () => {
    h = await makeHarness({ signUp: "approval" });
    await h.addUser("alice", "alice pass");
    const { identity } = await h.login("alice", "alice pass");
    const err = await rejection(identity.attach({ service: "broker", perspective: "admin", client: null }));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
  });

  it("hears an approval made by another process (the CLI) on the same store", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "parallax-pending-"));
    const file = path.join(dir, "parallax.db");
    const store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    const cli = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
    try {
      h = await makeHarness({ signUp: "approval", store, watchIntervalMs: 10 });
      const res = await signUp(h.connect().root, "dave", "dave password", { kdf });
      const waiting = res.pending?.wait();
      const [request] = await cli.listPending(Date.now());
      await cli.decidePending(request?.id ?? 0, true, "", [{ service: "lobby", perspective: "member" }]);
      const identity = (await waiting)?.identity;
      expect((await identity?.whoami())?.info.name).toBe("dave");
    } finally {
      await h.close();
      cli.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
