import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../src/client.js";
import { ErrorCode } from "../src/errors.js";
import { type ParallaxServer, startServer } from "../src/server.js";
import { demoBootstrap } from "../src/services/demo/demo-service.js";
import { loginWithPassword, signUp } from "../src/login/client-login.js";
import { Root } from "../src/wire/gen/broker.js";
import { Demo } from "../src/wire/gen/demo.js";
import { LobbyMember } from "../src/wire/gen/lobby.js";
import { MaybeWallet_Which, WalletPerspective } from "../src/wire/gen/wallet.js";
import { expectNoLeaks } from "./rpc/harness.js";

const root = path.resolve(import.meta.dirname, "..");
let server: ParallaxServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("startServer and connect", () => {
  it("serves the bootstrap over WebSocket and TCP on the same listener set", async () => {
    server = await startServer({ port: 0, tcpPort: 0, bootstrap: () => demoBootstrap() });
    expect(server.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/rpc$/);
    for (const url of [server.url, `tcp://127.0.0.1:${server.tcpPort}`]) {
      const conn = await connect(url);
      const demo = conn.bootstrap(Demo);
      using reply = demo.echo({ payload: new Uint8Array([1, 2, 3]) });
      expect([...(await reply).payload]).toEqual([1, 2, 3]);
      reply.dispose();
      demo.dispose();
      const serverSide = [...server.connections];
      await expectNoLeaks(conn, ...serverSide);
      conn.close();
    }
  });

  it("fails calls of connected clients with `disconnected` when the server closes", async () => {
    server = await startServer({ port: 0, tcpPort: null, bootstrap: () => demoBootstrap() });
    const conn = await connect(server.url);
    const demo = conn.bootstrap(Demo);
    await demo.echo({ payload: new Uint8Array(1) });
    const pending = demo.sleep({ ms: 10_000 });
    await server.close();
    server = undefined;
    await expect(pending).rejects.toMatchObject({ kind: "disconnected" });
    await expect(demo.echo({ payload: new Uint8Array(1) })).rejects.toMatchObject({
      code: ErrorCode.DISCONNECTED,
    });
  });

  it("refuses a URL scheme it does not speak", async () => {
    await expect(connect("http://127.0.0.1:1/")).rejects.toMatchObject({ code: ErrorCode.BAD_ARGUMENT });
  });
});

describe("npm start (parallax serve)", () => {
  it("serves a Root with logins, the lobby and wallet sync on the SQLite default, and exits 0 on SIGTERM", async () => {
    const data = mkdtempSync(path.join(tmpdir(), "parallax-serve-"));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "serve", "--port", "0", "--tcp-port", "0", "--data", data],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /(ws:\/\/127\.0\.0\.1:\d+\/rpc)/.exec(out);
          if (m) resolve(m[1] as string);
        });
        child.once("exit", (code) => reject(new Error(`exited early with ${code}: ${out}`)));
      });
      expect(out).toContain("sign-up open");
      const conn = await connect(url);
      const rootCap = conn.bootstrap(Root);
      const signed = await signUp(rootCap, "alice", "alice password");
      signed.identity?.dispose();
      const { identity } = await loginWithPassword(rootCap, "alice", "alice password");
      const member = identity.attach({ service: "lobby", perspective: "member", client: null }).perspective;
      expect((await member.castAs(LobbyMember).hello()).greeting).toBe("hello, alice");
      const wallet = identity
        .attach({ service: "wallet", perspective: "owner", client: null })
        .perspective.castAs(WalletPerspective);
      expect((await wallet.get()).wallet.which()).toBe(MaybeWallet_Which.NONE);
      expect(existsSync(path.join(data, "parallax.db"))).toBe(true);
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(out).toContain("SIGTERM: closing 1 connection(s)");
      conn.close();
    } finally {
      child.kill("SIGKILL");
      rmSync(data, { recursive: true, force: true });
    }
  });
});
