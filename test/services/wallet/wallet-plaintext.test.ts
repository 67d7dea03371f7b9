/**
 * The server never holds plaintext: after a real broker process served a whole wallet story, its
 * data folder (database, WAL) and everything it logged contain neither the passwords nor the
 * wallet's contents.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import type { RpcConnection } from "../../../src/rpc/index.js";
import { WalletClient } from "../../../src/services/wallet/wallet-client.js";
import { Root } from "../../../src/wire/gen/broker.js";
import { kdf } from "../../login/harness.js";

const repo = path.resolve(import.meta.dirname, "../../..");
let child: ChildProcessWithoutNullStreams | undefined;
let data = "";
afterEach(() => {
  child?.kill("SIGKILL");
  if (data !== "") rmSync(data, { recursive: true, force: true });
});

const PASSWORD = "plaintext-password-Ωmega-4417";
const NEW_PASSWORD = "second-plaintext-password-8821";
const SECRET_PREF = "plaintext-wallet-marker-73a9";

describe("the server never holds plaintext", () => {
  it("has neither password nor wallet contents in its files or its log", { timeout: 60_000 }, async () => {
    data = mkdtempSync(path.join(tmpdir(), "parallax-plaintext-"));
    child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "serve", "--port", "0", "--tcp-port", "0", "--data", data],
      { cwd: repo, stdio: "pipe", env: { ...process.env, NODE_DEBUG: "" } },
    );
    let log = "";
    child.stderr.on("data", (d: Buffer) => {
      log += d.toString();
    });
    const url = await new Promise<string>((resolve, reject) => {
      child?.stdout.on("data", (d: Buffer) => {
        log += d.toString();
        const m = /(ws:\/\/127\.0\.0\.1:\d+\/rpc)/.exec(log);
        if (m) resolve(m[1] as string);
      });
      child?.once("exit", (code) => reject(new Error(`broker exited with ${code}: ${log}`)));
    });
    const conns: RpcConnection[] = [];
    const openRoot = async (): Promise<Root> => {
      const c = await connect(url);
      conns.push(c);
      return c.bootstrap(Root);
    };
    const c1 = new WalletClient({ username: "joe@example.com", password: PASSWORD, openRoot, kdf });
    await c1.register();
    await c1.login();
    c1.initWalletState();
    c1.setPreference("animal", SECRET_PREF);
    expect((await c1.updateRemoteWallet()).status).toBe("success");
    const c2 = new WalletClient({ username: "joe@example.com", password: PASSWORD, openRoot, kdf });
    await c2.login();
    c2.initWalletState();
    await c2.getRemoteWallet();
    expect(c2.getPreferences(["animal"]).animal).toBe(SECRET_PREF);
    expect((await c1.changePassword(NEW_PASSWORD)).status).toBe("success");
    await c1.close();
    await c2.close().catch(() => {});
    for (const c of conns) c.close();

    const exited = new Promise<void>((r) => child?.once("exit", () => r()));
    child.kill("SIGTERM");
    await exited;
    const files = readdirSync(data).map((f) => path.join(data, f));
    expect(files.some((f) => f.endsWith("parallax.db"))).toBe(true);
    const haystacks = [...files.map((f) => readFileSync(f)), Buffer.from(log)];
    for (const needle of [PASSWORD, NEW_PASSWORD, SECRET_PREF, '"animal"']) {
      for (const hay of haystacks) {
        expect(hay.includes(Buffer.from(needle, "utf8")), needle).toBe(false);
        expect(hay.includes(Buffer.from(needle, "utf16le")), needle).toBe(false);
      }
    }
    // and the database does hold the account and its (encrypted) wallet
    const db = readFileSync(path.join(data, "parallax.db"));
    expect(db.includes(Buffer.from("joe@example.com"))).toBe(true);
  });
});
