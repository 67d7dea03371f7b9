import { spawn } from "node:child_process";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KEYRING_SORTED, TempStores, walletFor } from "./fixtures.js";
import { walletsOf } from "../helpers/stores.js";

const root = path.resolve(import.meta.dirname, "../..");
const writer = path.join(import.meta.dirname, "crash-writer.ts");
const walletWriter = path.join(import.meta.dirname, "wallet-crash-writer.ts");
const ACKS_BEFORE_KILL = 50;

let t: TempStores;
beforeEach(() => {
  t = new TempStores();
});
afterEach(() => t.cleanup());

/**
 * Runs `script` on `file` until it has printed `acks` lines `<word> N`, SIGKILLs it, and returns
 * the last N.
 */
function runAndKill(script: string, word: string, file: string, acks: number): Promise<number> {
  const ack = new RegExp(`^${word} (\\d+)$`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, file], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buffered = "";
    let stderr = "";
    let last = -1;
    let count = 0;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const m = ack.exec(line);
        if (!m) continue;
        last = Number(m[1]);
        count++;
      }
      if (count >= acks && !child.killed) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" && count >= acks) resolve(last);
      else reject(new Error(`writer exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

describe("crash consistency", () => {
  it("a store killed mid-write reopens intact with every acknowledged change and no half transaction", async () => {
    const lastAck = await runAndKill(writer, "epoch", t.file, ACKS_BEFORE_KILL);
    expect(lastAck).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

    const store = t.open();
    expect(store.integrityCheck()).toEqual([]);
    const identity = await store.findIdentityByName("crash");
    expect(identity).toBeDefined();
    const epoch = identity?.epoch as number;
    // Every acknowledged bump survived; at most one more committed before its line was written.
    expect(epoch).toBeGreaterThanOrEqual(lastAck);
    expect(epoch).toBeLessThanOrEqual(lastAck + 1);

    // The identity starts at epoch 0 and each bump commits with exactly one "credential" row.
    const audit = await store.listAudit(1_000_000);
    const credential = audit.filter((a) => a.kind === "credential");
    expect(credential).toHaveLength(epoch);
    expect(credential[0]?.detail).toBe(`round ${epoch}`);

    // Each round's API key commits with its whole keyring and its one "admin" row, or not at all;
    // every verifier change deletes the keys made before it. So the last round's key is the only
    // one left if its "admin" row committed, and there is none if the kill came before it.
    const admin = audit.filter((a) => a.kind === "admin");
    expect(admin.length).toBeGreaterThanOrEqual(epoch - 1);
    expect(admin.length).toBeLessThanOrEqual(epoch);
    const keys = await store.listApiKeys(identity?.id as number);
    expect(keys.map((k) => k.description)).toEqual(admin.length === epoch ? [`key ${epoch}`] : []);
    for (const key of keys) expect(key.keyring).toEqual(KEYRING_SORTED);
    expect(identity?.verifier?.salt[0]).toBe(epoch % 200);
  });

  it("a wallet writer killed mid-stream reopens with the last acknowledged wallet or the next, byte for byte", async () => {
    const lastAck = await runAndKill(walletWriter, "sequence", t.file, ACKS_BEFORE_KILL);
    expect(lastAck).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

    const store = t.open();
    expect(store.integrityCheck()).toEqual([]);
    const identity = await store.findIdentityByName("wallet");
    expect(identity).toBeDefined();
    const wallet = await walletsOf(store).getWallet(identity?.id as number);
    const sequence = wallet?.sequence as number;
    // An update may have committed just before the kill, without its line being written.
    expect(sequence).toBeGreaterThanOrEqual(lastAck);
    expect(sequence).toBeLessThanOrEqual(lastAck + 1);
    const expected = walletFor(sequence);
    expect(wallet?.encryptedWallet).toEqual(expected.encryptedWallet);
    expect(wallet?.hmac).toEqual(expected.hmac);
  });
});
