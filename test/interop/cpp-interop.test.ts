/**
 * Interoperability with the reference implementation. `client.c++`, built here on the C++
 * capnp-rpc library, runs echo, a pipelined chain, a callback and a failing call against our TCP
 * listener; then the same run goes through a recording proxy, and every message the two sides
 * exchanged is decoded both by our codec and by the reference `capnp` tool, which must agree.
 *
 * Needs pkg-config, libcapnp-dev, capnproto (the `capnp` tool) and g++; skipped without them.
 * The client is compiled once per run into a temporary folder (the generated C++ is never kept).
 */
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Pointer } from "capnp-ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, type ParallaxError } from "../../src/errors.js";
import { resolveLimits } from "../../src/limits.js";
import { type ParallaxServer, startServer } from "../../src/server.js";
import { demoBootstrap } from "../../src/services/demo/demo-service.js";
import * as rpc from "../../src/wire/gen/capnp/rpc.js";
import { Counter$methods, Demo$methods } from "../../src/wire/gen/demo.js";
import { decodeRpcMessage } from "../../src/wire/message-codec.js";
import { splitFrames } from "../helpers/frames.js";
import { expectNoLeaks } from "../helpers/rpc-stats.js";

const root = path.resolve(import.meta.dirname, "../..");
const clientSource = path.join(import.meta.dirname, "client.c++");
const EXPECTED_STDOUT = ["ok echo", "ok pipeline", "ok subscribe", "ok fail", "released"];

function succeeds(command: string, args: readonly string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const missing = [
  succeeds("pkg-config", ["--exists", "capnp-rpc"]) ? undefined : "capnp-rpc (pkg-config)",
  succeeds("capnp", ["--version"]) ? undefined : "capnp",
  succeeds("g++", ["--version"]) ? undefined : "g++",
].filter((m) => m !== undefined);

if (missing.length > 0) {
  console.warn(
    "C++ interop skipped: install libcapnp-dev (apt-get install -y libcapnp-dev); " +
      `the test also needs capnproto (the capnp tool) and g++. Missing: ${missing.join(", ")}`,
  );
}

const run = promisify(execFile);

/** A kj-friendly environment for tools run in `cwd` (kj warns when PWD disagrees with the cwd). */
const envIn = (cwd: string): NodeJS.ProcessEnv => ({ ...process.env, PWD: cwd });

// ---- the C++ client --------------------------------------------------------------------------------

interface ClientExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface ClientRun {
  /** Resolves once the client printed `released` (it then holds no capability); rejects if it exits first. */
  readonly released: Promise<void>;
  /** Closes the client's stdin, which lets it exit, and resolves with how it exited. */
  finish(): Promise<ClientExit>;
}

const children = new Set<ChildProcess>();

function startClient(binary: string, port: number): ClientRun {
  const child = spawn(binary, [String(port)], { stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exited = new Promise<ClientExit>((resolve) => {
    child.once("error", (err) => {
      stderr += String(err);
    });
    child.once("close", (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  const released = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (/^released$/m.test(stdout)) resolve();
    });
    void exited.then((e) =>
      reject(new Error(`the C++ client exited (${e.code ?? e.signal}) early:\n${e.stdout}${e.stderr}`)),
    );
  });
  released.catch(() => {}); // awaited by the test; this only keeps an early exit from being "unhandled"
  return {
    released,
    finish() {
      child.stdin.end();
      return exited;
    },
  };
}

/**
 * Runs the C++ client against `port` (the server's TCP port, or a proxy in front of it) and checks
 * that every step passed, that the server's tables are empty once the client released everything
 * (while the connection is still open), and that the connection then closed cleanly.
 */
async function runClientAgainst(binary: string, port: number, server: ParallaxServer): Promise<void> {
  const client = startClient(binary, port);
  await client.released;

  expect(server.connections.size).toBe(1);
  const [connection] = [...server.connections];
  await expectNoLeaks(connection!);
  const closed = new Promise<ParallaxError>((resolve) => connection!.onClose(resolve));

  const exit = await client.finish();
  expect(exit.stderr).toBe("");
  expect(exit.code).toBe(0);
  expect(exit.stdout.trimEnd().split("\n")).toEqual(EXPECTED_STDOUT);
  // Ended by the peer hanging up, not aborted by either side for a protocol violation.
  expect((await closed).code).toBe(ErrorCode.DISCONNECTED);
  expect(server.connections.size).toBe(0);
}

// ---- the recording proxy -----------------------------------------------------------------------------

interface RecordingProxy {
  readonly port: number;
  /** Bytes the client sent to the server, in order. */
  readonly toServer: Buffer[];
  /** Bytes the server sent to the client, in order. */
  readonly toClient: Buffer[];
  /** Resolves when every connection made through the proxy has closed on both sides. */
  drained(): Promise<void>;
  /** Drops any connection still open and stops listening. */
  close(): Promise<void>;
}

async function startRecordingProxy(targetPort: number): Promise<RecordingProxy> {
  const toServer: Buffer[] = [];
  const toClient: Buffer[] = [];
  const closings: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();
  const closed = (socket: net.Socket) =>
    new Promise<void>((resolve) => socket.once("close", () => resolve()));
  // Forwarded by hand rather than with pipe(): pipe() pauses a source whose destination closed,
  // and a paused socket never sees its peer's end, so it would never close.
  const forward = (from: net.Socket, to: net.Socket, record: Buffer[]): void => {
    from.on("data", (chunk: Buffer) => {
      record.push(chunk);
      if (!to.writableEnded) to.write(chunk);
    });
    from.on("end", () => to.end());
  };
  const listener = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    closings.push(Promise.all([closed(client), closed(upstream)]).then(() => {}));
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    }
    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", destroyBoth);
    upstream.on("error", destroyBoth);
    forward(client, upstream, toServer);
    forward(upstream, client, toClient);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (listener.address() as AddressInfo).port,
    toServer,
    toClient,
    drained: async () => {
      await Promise.all(closings);
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

// ---- reading a recorded stream -----------------------------------------------------------------------

/** A value of Cap'n Proto text format, as `capnp decode` prints it; numbers are kept as their digits. */
type TextValue = string | boolean | TextValue[] | { [field: string]: TextValue };

/** Parses one `capnp decode --short` line. Void prints as `void`, AnyPointer as `<opaque pointer>`. */
function parseCapnpText(text: string): TextValue {
  let at = 0;
  const fail = (why: string): never => {
    throw new Error(`cannot parse capnp text at ${at} (${why}): ${text}`);
  };
  const skipSpace = (): void => {
    while (text[at] === " ") at++;
  };
  const expectChar = (c: string): void => {
    skipSpace();
    if (text[at] !== c) fail(`expected '${c}'`);
    at++;
  };
  const word = (): string => {
    skipSpace();
    const m = /^[A-Za-z0-9_.+-]+/.exec(text.slice(at));
    if (m === null) return fail("expected a word");
    at += m[0].length;
    return m[0];
  };
  const string = (): string => {
    expectChar('"');
    let out = "";
    for (;;) {
      const c = text[at++];
      if (c === undefined) return fail("unterminated string");
      if (c === '"') return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[at++];
      const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", '"': '"', "'": "'", "\\": "\\" };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === "x") {
        out += String.fromCharCode(Number.parseInt(text.slice(at, at + 2), 16));
        at += 2;
      } else fail(`unknown escape \\${e}`);
    }
  };
  const value = (): TextValue => {
    skipSpace();
    const c = text[at];
    if (c === "(") {
      at++;
      const fields: { [field: string]: TextValue } = {};
      skipSpace();
      while (text[at] !== ")") {
        const name = word();
        expectChar("=");
        fields[name] = value();
        skipSpace();
        if (text[at] === ",") at++;
        else if (text[at] !== ")") fail("expected ',' or ')'");
      }
      at++;
      return fields;
    }
    if (c === "[") {
      at++;
      const items: TextValue[] = [];
      skipSpace();
      while (text[at] !== "]") {
        items.push(value());
        skipSpace();
        if (text[at] === ",") at++;
        else if (text[at] !== "]") fail("expected ',' or ']'");
      }
      at++;
      return items;
    }
    if (c === '"') return string();
    if (text.startsWith("<opaque pointer>", at)) {
      at += "<opaque pointer>".length;
      return "<opaque pointer>";
    }
    const w = word();
    return w === "true" ? true : w === "false" ? false : w;
  };
  const result = value();
  skipSpace();
  if (at !== text.length) fail("trailing text");
  return result;
}

/** The messages of a recorded stream as the reference tool reads them, one parsed value each. */
function decodeWithReference(stream: Uint8Array, rpcSchema: string): TextValue[] {
  const cwd = path.dirname(rpcSchema);
  const out = spawnSync("capnp", ["decode", "--short", rpcSchema, "Message"], {
    cwd,
    env: envIn(cwd),
    input: stream,
    encoding: "utf8",
  });
  expect(out.stderr).toBe("");
  expect(out.status).toBe(0);
  return out.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => withoutEmptyText(parseCapnpText(line)));
}

/**
 * Drops Text fields that read as "". A null Text pointer reads as "" in Cap'n Proto; the reference
 * tool leaves null pointers out, while `$toObject()` reports every Text field, so an absent field and
 * an empty one are the same value here.
 */
function withoutEmptyText(value: TextValue): TextValue {
  if (Array.isArray(value)) return value.map(withoutEmptyText);
  if (typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== "")
      .map(([k, v]) => [k, withoutEmptyText(v)]),
  );
}

const MESSAGE_KIND = new Map<number, string>(
  Object.entries(rpc.Message_Which).map(([name, which]) => [
    which,
    name.toLowerCase().replace(/_(\w)/g, (_, c: string) => c.toUpperCase()),
  ]),
);
const EXCEPTION_TYPE = new Map<number, string>(
  Object.entries(rpc.Exception_Type).map(([name, value]) => [value, name.toLowerCase()]),
);

/**
 * Our decoder's reading of a message (`$toObject()`) in the shape `parseCapnpText` gives the
 * reference tool's: numbers as digits, Void as `void`, AnyPointer as `<opaque pointer>`, the one
 * enum of rpc.capnp (Exception.type) by name, Text that reads as "" left out (see withoutEmptyText).
 */
function asCapnpText(value: unknown, field?: string): TextValue {
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== "")
        .map(([k, v]) => [k, asCapnpText(v, k)]),
    );
  }
  if (value === null) return "void";
  if (typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number" && field === "type") return EXCEPTION_TYPE.get(value) ?? String(value);
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (Array.isArray(value)) return value.map((v) => asCapnpText(v));
  if (value instanceof Pointer) return "<opaque pointer>";
  throw new Error(`unexpected value in a decoded RPC message: ${String(value)}`);
}

// ---- the tests ----------------------------------------------------------------------------------------

describe.skipIf(missing.length > 0)("interop with the reference C++ implementation (capnp-rpc)", () => {
  let buildDir: string | undefined;
  let binary = "";
  let rpcSchema = "";
  let server: ParallaxServer | undefined;

  beforeAll(async () => {
    buildDir = await mkdtemp(path.join(os.tmpdir(), "parallax-interop-"));
    await run("capnp", ["compile", `-oc++:${buildDir}`, "--src-prefix=schema", "schema/demo.capnp"], {
      cwd: root,
      env: envIn(root),
    });
    const { stdout: flags } = await run("pkg-config", ["--cflags", "--libs", "capnp-rpc"]);
    binary = path.join(buildDir, "interop-client");
    await run("g++", [
      "-std=c++17",
      "-O1",
      "-Wall",
      "-Wextra",
      `-I${buildDir}`,
      clientSource,
      path.join(buildDir, "demo.capnp.c++"),
      "-o",
      binary,
      ...flags.trim().split(/\s+/),
    ]);
    const { stdout: includeDir } = await run("pkg-config", ["--variable=includedir", "capnp"]);
    rpcSchema = path.join(includeDir.trim(), "capnp", "rpc.capnp");
  }, 120_000);

  afterEach(async () => {
    for (const child of children) child.kill();
    await server?.close();
    server = undefined;
  });

  afterAll(async () => {
    if (buildDir !== undefined) await rm(buildDir, { recursive: true, force: true });
  });

  it("passes every step of the C++ client over TCP, leaves no table entry behind, and serves a second run", async () => {
    server = await startServer({ port: 0, tcpPort: 0, bootstrap: () => demoBootstrap() });
    await runClientAgainst(binary, server.tcpPort!, server);
    await runClientAgainst(binary, server.tcpPort!, server);
  }, 30_000);

  it("agrees with the reference tool on every message exchanged with the C++ client, both ways", async () => {
    server = await startServer({ port: 0, tcpPort: 0, bootstrap: () => demoBootstrap() });
    const proxy = await startRecordingProxy(server.tcpPort!);
    try {
      await runClientAgainst(binary, proxy.port, server);
      await proxy.drained();
    } finally {
      await proxy.close();
    }

    const limits = resolveLimits();
    const kindsOf = (messages: readonly TextValue[]): string[] =>
      messages.map((m) => Object.keys(m as object).join("|"));
    const directions = [
      { name: "client to server", stream: Buffer.concat(proxy.toServer) },
      { name: "server to client", stream: Buffer.concat(proxy.toClient) },
    ];
    const kinds: Record<string, string[]> = {};
    for (const { name, stream } of directions) {
      const frames = splitFrames(stream);
      const ours = frames.map((f) => decodeRpcMessage(f, limits).root);
      const theirs = decodeWithReference(stream, rpcSchema);

      expect(theirs.length, name).toBe(frames.length);
      kinds[name] = ours.map((m) => MESSAGE_KIND.get(m.which()) ?? `unknown ${m.which()}`);
      expect(kindsOf(theirs), name).toEqual(kinds[name]);
      for (let i = 0; i < frames.length; i++) {
        expect(asCapnpText(ours[i]!.$toObject()), `${name}, message ${i}`).toEqual(theirs[i]);
      }

      if (name === "client to server") {
        // newCounter(10).counter.inc(5).self.inc(1).self.get(): every call after the first went out
        // before its target was known, addressed to pointer 0 (`counter`, then `self`) of the
        // promised answer of the call before it.
        const calls = ours.filter((m) => m.isCall()).map((m) => m.call);
        const first = calls.findIndex(
          (c) =>
            c.interfaceId === Demo$methods.newCounter.interfaceId &&
            c.methodId === Demo$methods.newCounter.methodId,
        );
        const chain = calls.slice(first, first + 4);
        expect(chain.map((c) => [c.interfaceId, c.methodId])).toEqual(
          [Demo$methods.newCounter, Counter$methods.inc, Counter$methods.inc, Counter$methods.get].map(
            (m) => [m.interfaceId, m.methodId],
          ),
        );
        for (let i = 1; i < chain.length; i++) {
          const target = chain[i]!.target;
          expect(target.which(), `pipelined call ${i}`).toBe(rpc.MessageTarget_Which.PROMISED_ANSWER);
          expect(target.promisedAnswer.questionId).toBe(chain[i - 1]!.questionId);
          expect(target.promisedAnswer.transform.toArray().map((op) => op.getPointerField)).toEqual([0]);
        }
      }
    }
    // Both sides called, answered, finished and released: the exchange exercised every level-1 basic.
    expect(new Set(kinds["client to server"])).toEqual(
      new Set(["bootstrap", "call", "return", "finish", "release"]),
    );
    expect(new Set(kinds["server to client"])).toEqual(new Set(["return", "call", "finish", "release"]));
  }, 30_000);
});
