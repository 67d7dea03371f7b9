import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteBrokerStore } from "../src/store/index.js";

const root = path.resolve(import.meta.dirname, "..");
let data: string;
beforeAll(() => {
  data = mkdtempSync(path.join(tmpdir(), "parallax-cli-"));
});
afterAll(() => rmSync(data, { recursive: true, force: true }));

/** Runs `parallax …` on the test's data folder; resolves when it exits. */
function cli(args: string[], stdin = ""): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args, "--data", data], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  child.stdin.end(stdin);
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, out, err })));
}

describe("parallax user / admin", { timeout: 30_000 }, () => {
  it("adds a user with a password read from stdin, storing only a verifier", async () => {
    const r = await cli(
      ["user", "add", "alice", "--keyring", "lobby:member,broker:admin"],
      "alice password\n",
    );
    expect(r.err).toBe("");
    expect(r.out).toContain("added alice with keyring lobby:member,broker:admin");
    const store = SqliteBrokerStore.open(path.join(data, "parallax.db"));
    try {
      const alice = await store.findIdentityByName("alice");
      expect(alice?.verifier?.storedKey).toHaveLength(32);
      expect(alice?.keyring.map((k) => k.service).sort()).toEqual(["broker", "lobby"]);
    } finally {
      store.close();
    }
    const list = await cli(["user", "list"]);
    expect(list.out).toMatch(/alice\tepoch 0\tactive\tbroker:admin,lobby:member/);
  });

  it("suspends and sets keyrings, bumping the epoch each time", async () => {
    expect((await cli(["user", "suspend", "alice"])).out).toContain("alice suspended (epoch 1");
    expect((await cli(["user", "keyring", "alice", "lobby:member"])).out).toContain("(epoch 2");
    expect((await cli(["user", "keyring", "alice"])).out.trim()).toBe("lobby:member");
    expect((await cli(["user", "list"])).out).toMatch(/alice\tepoch 2\tsuspended\tlobby:member/);
  });

  it("shows and sets a user's router role, bumping the epoch; refuses a malformed role", async () => {
    expect((await cli(["user", "role", "alice"])).out.trim()).toBe("alice role frontend (the default)");
    const bad = await cli(["user", "role", "alice", "Back End"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("a role name is 1..64 of a-z");
    expect((await cli(["user", "role", "alice"])).out.trim()).toBe("alice role frontend (the default)");
    expect((await cli(["user", "role", "alice", "backend"])).out).toContain("alice role backend (epoch 3");
    expect((await cli(["user", "role", "alice"])).out.trim()).toBe("alice role backend");
  });

  it("lists, approves and rejects pending sign-ups", async () => {
    const store = SqliteBrokerStore.open(path.join(data, "parallax.db"));
    const now = Date.now();
    const base = {
      identityId: null,
      verifier: null,
      publicKey: null,
      device: "",
      remoteAddress: "10.0.0.9",
      createdAt: now,
    };
    const bob = await store.createPending({
      ...base,
      kind: "signUp",
      username: "bob",
      expiresAt: now + 60_000,
    });
    const eve = await store.createPending({
      ...base,
      kind: "signUp",
      username: "eve",
      expiresAt: now + 60_000,
    });
    store.close();
    const pending = await cli(["admin", "pending"]);
    expect(pending.out).toContain(`${bob.id}\tsign-up\tbob\tfrom 10.0.0.9`);
    expect((await cli(["admin", "approve", String(bob.id)])).out).toContain(
      `approved request ${bob.id} (bob)`,
    );
    expect((await cli(["admin", "reject", String(eve.id), "--reason", "spam"])).out).toContain("rejected");
    expect((await cli(["admin", "pending"])).out).toContain("nothing pending");
    expect((await cli(["user", "list"])).out).toContain("bob");
    const audit = await cli(["admin", "audit", "--limit", "3"]);
    expect(audit.out).toContain("rejected");
  });

  it("fails with a clear message and exit code on bad input, changing nothing", async () => {
    const short = await cli(["user", "add", "mallory"], "short\n");
    expect(short.code).toBe(1);
    expect(short.err).toContain("at least 8 characters");
    const bad = await cli(["user", "keyring", "alice", "lobby"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("service:perspective");
    const missing = await cli(["admin", "approve", "999"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^parallax: .*999/);
    expect((await cli(["user", "list"])).out).not.toContain("mallory");
  });
});
