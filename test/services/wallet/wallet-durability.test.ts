/**
 * Durability: SIGKILL the broker process in the middle of a stream of wallet updates, restart it
 * on the same data folder: the stored wallet is the last acknowledged one (or the one in flight
 * when the process died, which committed without its acknowledgement reaching the client).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import { loginWithPassword, signUp } from "../../../src/login/client-login.js";
import type { RpcConnection } from "../../../src/rpc/index.js";
import { Root } from "../../../src/wire/gen/broker.js";
import { MaybeWallet_Which, UpdateOutcome_Which, WalletPerspective } from "../../../src/wire/gen/wallet.js";
import { kdf } from "../../login/harness.js";

const repo = path.resolve(import.meta.dirname, "../../..");
const dirs: string[] = [];
const children: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Starts `parallax serve` on `data` and resolves with its URL once it listens. */
function serve(data: string): Promise<{ child: ChildProcessWithoutNullStreams; url: string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli.ts", "serve", "--port", "0", "--tcp-port", "0", "--data", data],
    { cwd: repo, stdio: "pipe" },
  );
  children.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /(ws:\/\/127\.0\.0\.1:\d+\/rpc)/.exec(out);
      if (m) resolve({ child, url: m[1] as string });
    });
    child.once("exit", (code) => reject(new Error(`broker exited with ${code}: ${out}`)));
  });
}

const body = (seq: number): Uint8Array =>
  new TextEncoder().encode(`wallet bytes for sequence ${seq}`.repeat(20));

async function openWallet(url: string): Promise<{ conn: RpcConnection; wallet: WalletPerspective }> {
  const conn = await connect(url);
  const { identity } = await loginWithPassword(conn.bootstrap(Root), "alice", "alice password", { kdf });
  const wallet = (
    await identity.attach({ service: "wallet", perspective: "owner", client: null })
  ).perspective.castAs(WalletPerspective);
  return { conn, wallet };
}

describe("wallet durability", () => {
  it("keeps exactly the acknowledged state (or the one in flight) across a SIGKILL", {
    timeout: 60_000,
  }, async () => {
    const data = mkdtempSync(path.join(tmpdir(), "parallax-wallet-kill-"));
    dirs.push(data);
    const first = await serve(data);
    const setup = await connect(first.url);
    (await signUp(setup.bootstrap(Root), "alice", "alice password", { kdf })).identity?.dispose();
    setup.close();
    const { conn, wallet } = await openWallet(first.url);

    let lastAck = 0;
    const dead = new Promise<void>((resolve) => first.child.once("exit", () => resolve()));
    const stream = (async () => {
      for (let seq = 1; ; seq++) {
        try {
          const out = (
            await wallet.update({
              state: { sequence: BigInt(seq), encryptedWallet: body(seq), hmac: new Uint8Array(32) },
            })
          ).outcome;
          expect(out.which()).toBe(UpdateOutcome_Which.ACCEPTED);
          lastAck = seq;
          if (seq === 60) first.child.kill("SIGKILL");
        } catch {
          return; // the broker died under us
        }
      }
    })();
    await Promise.all([stream, dead]);
    conn.close();
    expect(lastAck).toBeGreaterThanOrEqual(60);

    const second = await serve(data);
    const again = await openWallet(second.url);
    const stored = (await again.wallet.get()).wallet;
    expect(stored.which()).toBe(MaybeWallet_Which.STATE);
    const seq = Number(stored.state.sequence);
    expect([lastAck, lastAck + 1]).toContain(seq);
    expect(Buffer.from(stored.state.encryptedWallet).equals(Buffer.from(body(seq)))).toBe(true);
    again.conn.close();
  });
});
