/**
 * Hostile peers: one test per limit and per kind of malformed or nonsensical message.
 *
 * Every test checks four things: the outcome the spec gives (an Abort naming the problem and then
 * the close, for protocol violations; an exception in that call's Return and a connection that
 * lives on, for call-level problems), that nothing escaped to the process, that another connection
 * made before the attack is still served, and that the attacked connection's tables are empty
 * afterwards.
 *
 * Where the server never reads part of a message, that part cannot cost anything: capnp-ts reads
 * lazily, so the traversal and depth limits bite only where the engine (or a method) actually
 * walks the content: the cap table, targets, the fields a method reads, and the deep copy made
 * when a level 3 message is echoed back as Unimplemented.
 */
import { type Message, type Pointer, Struct } from "capnp-ts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CallContext } from "../../src/caps/index.js";
import { ErrorCode, nullCapError, ParallaxError } from "../../src/errors.js";
import { RpcConnection } from "../../src/rpc/index.js";
import { DemoServer, demoBootstrap } from "../../src/services/demo/demo-service.js";
import { type CloseInfo, CloseCode, type Transport } from "../../src/transport/transport.js";
import * as rpc from "../../src/wire/gen/capnp/rpc.js";
import { Counter$methods, Demo, Demo$methods, type Demo_echo_Params } from "../../src/wire/gen/demo.js";
import { decodeRpcMessage } from "../../src/wire/message-codec.js";
import { frame } from "../helpers/frames.js";
import { EMPTY_STATS as EMPTY, expectNoLeaks } from "../helpers/rpc-stats.js";
import { waitFor, within } from "../helpers/wait.js";
import { connectPair, type Pair } from "./harness.js";
import {
  ElementSize,
  type Incoming,
  RawPeer,
  type RawPeerOptions,
  RawWords,
  trapProcessErrors,
} from "./raw-peer.js";

const PROTOCOL_ERROR_CLOSE = CloseCode.PROTOCOL_ERROR;
const INVALID_DATA_CLOSE = CloseCode.INVALID_DATA;
const MESSAGE_TOO_BIG_CLOSE = CloseCode.MESSAGE_TOO_BIG;

let trap: ReturnType<typeof trapProcessErrors>;
let bystander: Pair;
let peer: RawPeer | undefined;

beforeEach(() => {
  trap = trapProcessErrors();
  bystander = connectPair();
});

afterEach(() => {
  peer?.close();
  peer = undefined;
  bystander.client.close();
  bystander.server.close();
  trap.stop();
});

/** Opens the attacked connection and bootstraps it; resolves to the bootstrap's export id. */
async function attack(options: RawPeerOptions = {}): Promise<{ peer: RawPeer; boot: number }> {
  const p = RawPeer.open(options);
  peer = p;
  return { peer: p, boot: await p.bootstrapped(0) };
}

/** The server sent an Abort whose reason carries `code` and matches `why`, then closed; its tables are empty. */
async function expectAborted(p: RawPeer, code: ErrorCode, why: RegExp, received?: Incoming): Promise<void> {
  const abort = (received ?? (await p.next("abort"))).root.abort;
  expect(abort.reason.startsWith(`[${code}] `), abort.reason).toBe(true);
  expect(abort.reason).toMatch(why);
  const close = await p.closed;
  expect(close.code).toBe(PROTOCOL_ERROR_CLOSE);
  expect(close.error).toBeInstanceOf(ParallaxError);
  expect(close.error).toMatchObject({ code });
  expect(close.error.message).toMatch(why);
  expect(p.server.stats()).toEqual(EMPTY);
}

/** The server's transport refused a frame before the engine saw it: a close with `closeCode`, no Abort. */
async function expectRefusedFrame(p: RawPeer, code: ErrorCode, closeCode: number, why: RegExp) {
  const close = await p.closed;
  expect(close.code).toBe(closeCode);
  expect(close.reason).toMatch(why);
  expect(close.error).toMatchObject({ code });
  expect(p.log.map((m) => m.kind)).not.toContain("abort");
  expect(p.server.stats()).toEqual(EMPTY);
}

/** Nothing escaped to the process, and the connection made before the attack still answers. */
async function expectOthersUnharmed(): Promise<void> {
  const { demo, client, server } = bystander;
  {
    using reply = demo.echo({ payload: new Uint8Array([7, 8, 9]) });
    expect([...(await reply).payload]).toEqual([7, 8, 9]);
  }
  demo.dispose();
  await expectNoLeaks(client, server);
  expect(trap.errors).toEqual([]);
}

/** The peer finishes `qids` (and the bootstrap), releases what it holds; the server's tables drain. */
async function cleanUpLive(p: RawPeer, qids: readonly number[], finishBootstrap = true): Promise<void> {
  expect(p.server.closed).toBe(false);
  for (const q of qids) p.finish(q);
  if (finishBootstrap) p.finish(0);
  p.releaseAll();
  await expectNoLeaks(p.server);
  expect(p.server.closed).toBe(false);
}

/** Expects question `qid` to have returned an exception; resolves to it. */
async function exceptionOf(p: RawPeer, qid: number): Promise<rpc.Exception> {
  const ret = await p.returnOf(qid);
  expect(ret.which(), "expected an exception in the Return").toBe(rpc.Return_Which.EXCEPTION);
  return ret.exception;
}

/** A chain of `depth` structs, each holding only a pointer to the next, written at `at`. */
function writeChain(w: RawWords, at: number, depth: number): void {
  for (let i = 0; i < depth; i++) {
    const s = w.alloc(1);
    w.structPtr(at, s, 0, 1);
    at = s;
  }
}

/** A list of `n` pointers at `at`, every one pointing at the same `blobWords`-word byte list. */
function writeSharedBlob(w: RawWords, at: number, n: number, blobWords: number): void {
  const list = w.alloc(n);
  w.listPtr(at, list, ElementSize.POINTER, n);
  const blob = w.alloc(blobWords);
  for (let i = 0; i < n; i++) w.listPtr(list + i * 8, blob, ElementSize.BYTE, blobWords * 8);
}

/** Params content: a struct of `ptrs` pointers whose pointer `i` is written by `fill[i]`. */
function paramsStruct(content: Pointer, message: Message, fill: ((w: RawWords, at: number) => void)[]) {
  const w = new RawWords(message);
  const s = w.alloc(fill.length);
  w.structPtr(content.byteOffset, s, 0, fill.length);
  for (let i = 0; i < fill.length; i++) fill[i]?.(w, s + i * 8);
}

/** A Join (level 4) whose keyPart the test writes; the server echoes it back, copying it. */
function sendJoin(p: RawPeer, boot: number, keyPart: (w: RawWords, at: number) => void): Uint8Array {
  return p.build((root, message) => {
    const join = root.initJoin();
    join.questionId = 40;
    join.initTarget().importedCap = boot;
    keyPart(new RawWords(message), Struct.getPointer(1, join).byteOffset);
  });
}

describe("a peer sending bytes that are not a Cap'n Proto message", () => {
  it("is refused for garbage bytes, with a close naming the impossible segment table", async () => {
    const { peer: p } = await attack();
    p.send(Uint8Array.from([0x01, 0x02, 0x03, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x00, 0xff]));
    await expectRefusedFrame(p, ErrorCode.LIMIT, MESSAGE_TOO_BIG_CLOSE, /67305986 segments/);
    await expectOthersUnharmed();
  });

  it("is aborted as malformed when a well-framed message holds garbage instead of a root pointer", async () => {
    const { peer: p } = await attack();
    const bytes = frame([2], { bodyWords: 2 });
    bytes.fill(0xab, 8);
    p.send(bytes);
    await expectAborted(p, ErrorCode.MALFORMED_MESSAGE, /pointer/);
    await expectOthersUnharmed();
  });

  it("is refused for a truncated message, whose frame is shorter than its segment table declares", async () => {
    const { peer: p } = await attack();
    const whole = p.build((root) => {
      root.initBootstrap().questionId = 5;
    }, false);
    p.send(whole.subarray(0, whole.length - 8));
    await expectRefusedFrame(p, ErrorCode.MALFORMED_MESSAGE, INVALID_DATA_CLOSE, /declaring \d+ bytes/);
    await expectOthersUnharmed();
  });

  it("is refused for a segment table whose sizes overflow, before anything is allocated", async () => {
    const { peer: p } = await attack();
    p.send(frame([0xffffffff, 0xffffffff, 0xffffffff], { bodyWords: 1 }));
    await expectRefusedFrame(
      p,
      ErrorCode.LIMIT,
      MESSAGE_TOO_BIG_CLOSE,
      /declares \d+ bytes; maxMessageBytes/,
    );
    await expectOthersUnharmed();
  });

  it("is refused for a segment table that declares fewer bytes than the frame holds", async () => {
    const { peer: p } = await attack();
    const bytes = frame([1], { bodyWords: 3 }); // declares one word, carries three
    p.send(bytes);
    await expectRefusedFrame(p, ErrorCode.MALFORMED_MESSAGE, INVALID_DATA_CLOSE, /declaring 16 bytes/);
    await expectOthersUnharmed();
  });

  it("is refused for a message with more segments than maxSegments", async () => {
    const { peer: p } = await attack({ limits: { maxSegments: 4 } });
    p.send(frame([1, 1, 1, 1, 1], { bodyWords: 5 }));
    await expectRefusedFrame(p, ErrorCode.LIMIT, MESSAGE_TOO_BIG_CLOSE, /5 segments; maxSegments is 4/);
    await expectOthersUnharmed();
  });

  it("is refused for a message over maxMessageBytes, however well formed", async () => {
    const { peer: p, boot } = await attack({ limits: { maxMessageBytes: 4096 } });
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      params: (params) => {
        params.payload = new Uint8Array(5000);
      },
    });
    await expectRefusedFrame(p, ErrorCode.LIMIT, MESSAGE_TOO_BIG_CLOSE, /maxMessageBytes is 4096/);
    await expectOthersUnharmed();
  });
});

/** A transport that hands every frame to the engine unchecked, as a careless transport might. */
class UncheckedTransport implements Transport {
  readonly kind = "memory" as const;
  readonly remoteAddress = undefined;
  readonly bufferedAmount = 0;
  readonly sent: Uint8Array[] = [];
  closed = false;
  closeCode: number | undefined;
  onMessage: (message: Uint8Array) => void = () => {};
  onClose: (info: CloseInfo) => void = () => {};
  send(message: Uint8Array): void {
    if (!this.closed) this.sent.push(message);
  }
  pause(): void {}
  resume(): void {}
  close(code = 1000, reason = ""): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    queueMicrotask(() => this.onClose({ code, reason }));
  }
}

describe("the engine's own decoder, behind a transport that checks nothing", () => {
  function feed(bytes: Uint8Array): { conn: RpcConnection; t: UncheckedTransport } {
    const t = new UncheckedTransport();
    const bootstrap = demoBootstrap();
    const conn = new RpcConnection(t, { bootstrap, limits: { maxSegments: 4 } });
    bootstrap.dispose();
    t.onMessage(bytes);
    return { conn, t };
  }

  function abortReason(t: UncheckedTransport): string {
    expect(t.sent).toHaveLength(1);
    const { root } = decodeRpcMessage(t.sent[0] as Uint8Array, {
      maxSegments: 1,
      maxTraversalWords: 1 << 20,
      maxNestingDepth: 64,
    });
    expect(root.which()).toBe(rpc.Message_Which.ABORT);
    return root.abort.reason;
  }

  it.each([
    [
      "more segments than maxSegments",
      frame([1, 1, 1, 1, 1], { bodyWords: 5 }),
      ErrorCode.LIMIT,
      /5 segments; the limit is 4/,
    ],
    ["a frame shorter than a segment table", new Uint8Array(4), ErrorCode.MALFORMED_MESSAGE, /shorter than/],
    [
      "a segment table cut short",
      frame([1, 1, 1], { bodyWords: 0 }).subarray(0, 8),
      ErrorCode.MALFORMED_MESSAGE,
      /truncated/,
    ],
    [
      "sizes that do not match the frame",
      frame([2], { bodyWords: 1 }),
      ErrorCode.MALFORMED_MESSAGE,
      /declares 24 bytes/,
    ],
    [
      "sizes that overflow",
      frame([0xffffffff], { bodyWords: 1 }),
      ErrorCode.MALFORMED_MESSAGE,
      /declares \d+ bytes/,
    ],
    [
      "a segment table and no content",
      frame([0], { bodyWords: 0 }),
      ErrorCode.MALFORMED_MESSAGE,
      /no content/,
    ],
  ])("aborts for %s, with the reason, and frees the tables", async (_what, bytes, code, why) => {
    const { conn, t } = feed(bytes);
    expect(conn.closedError).toMatchObject({ code });
    expect(conn.closedError?.message).toMatch(why);
    const reason = abortReason(t);
    expect(reason.startsWith(`[${code}] `)).toBe(true);
    expect(t.closeCode).toBe(PROTOCOL_ERROR_CLOSE);
    expect(conn.stats()).toEqual(EMPTY);
    await expectOthersUnharmed();
  });
});

describe("a peer exceeding the decoding limits", () => {
  it("echoes a level 4 Join nested deeper than maxNestingDepth byte for byte, never walking it", async () => {
    // The Unimplemented echo wraps the received bytes as they are: the chain is never traversed.
    const { peer: p, boot } = await attack({ serverLimits: { maxNestingDepth: 16 } });
    const sent = sendJoin(p, boot, (w, at) => writeChain(w, at, 200));
    const echo = await p.next("unimplemented");
    expect(echo.bytes.length).toBe(sent.length + 24);
    expect([...echo.bytes.subarray(32)]).toEqual([...sent.subarray(8)]);
    await cleanUpLive(p, []);
    await expectOthersUnharmed();
  });

  it("answers a call whose params hold deep nesting the method never reads: it is never traversed", async () => {
    const { peer: p, boot } = await attack({ serverLimits: { maxNestingDepth: 16 } });
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      content: (c, m) =>
        paramsStruct(c, m, [
          (w, at) => w.listPtr(at, w.bytes(Uint8Array.of(1, 2, 3)), ElementSize.BYTE, 3),
          (w, at) => writeChain(w, at, 500),
        ]),
    });
    const ret = await p.returnOf(1);
    expect(ret.isResults()).toBe(true);
    const results = Struct.getStruct(0, Demo$methods.echo.Results, ret.results);
    expect([...results.payload]).toEqual([1, 2, 3]);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("is aborted with LIMIT when reading a message's cap table takes more than maxTraversalWords", async () => {
    const { peer: p, boot } = await attack({ serverLimits: { maxTraversalWords: 1000 } });
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      caps: Array.from({ length: 2000 }, () => ({ none: true as const })),
    });
    await expectAborted(p, ErrorCode.LIMIT, /travers/i);
    await expectOthersUnharmed();
  });

  it("echoes a message whose pointers all share one object at its own size: nothing is amplified", async () => {
    // 100 pointers to one 1024-word blob: ~1.2k words on the wire, ~100k words if deep-copied.
    const { peer: p, boot } = await attack({ serverLimits: { maxTraversalWords: 10_000 } });
    const sent = sendJoin(p, boot, (w, at) => writeSharedBlob(w, at, 100, 1024));
    const echo = await p.next("unimplemented");
    expect(echo.bytes.length).toBe(sent.length + 24);
    await cleanUpLive(p, []);
    await expectOthersUnharmed();
  });
});

/** A composite list pointer at `at` to a tag claiming `count` elements of zero words each. */
function writeZeroSizedList(w: RawWords, at: number, count: number): void {
  const tag = w.alloc(2);
  w.listPtr(at, tag, ElementSize.COMPOSITE, 0);
  w.segment.setUint32(tag, (count << 2) >>> 0); // the tag: element count, then 0 data + 0 pointer words
  w.segment.setUint32(tag + 4, 0);
}

describe("a peer sending lists of zero-sized elements", () => {
  // A list of zero-sized structs costs nothing on the wire, whatever count it claims; reading its
  // elements one by one costs the reader per element. Such a list can be valid (a transform of
  // noops, a cap table of `none`s), so the server may read or refuse it, but one ~100-byte message
  // must not stall the process: whatever it does must take time independent of the claimed count.
  const CLAIMED = 2 ** 19;
  const BUDGET_MS = 250;

  it.each([
    ["a PromisedAnswer transform", "transform"],
    ["a payload's cap table", "capTable"],
  ] as const)(
    "answers or refuses %s claiming 2^19 elements in time independent of the count",
    async (_what, where) => {
      const { peer: p, boot } = await attack();
      p.call({ qid: 1, target: { importedCap: boot }, method: Demo$methods.newCounter });
      expect((await p.returnOf(1)).isResults()).toBe(true);
      const started = performance.now();
      p.build((root, message) => {
        const call = root.initCall();
        call.questionId = 2;
        const w = new RawWords(message);
        if (where === "transform") {
          call.interfaceId = Counter$methods.get.interfaceId;
          call.methodId = Counter$methods.get.methodId;
          const pa = call.initTarget().initPromisedAnswer();
          pa.questionId = 1;
          writeZeroSizedList(w, Struct.getPointer(0, pa).byteOffset, CLAIMED);
        } else {
          call.interfaceId = Demo$methods.echo.interfaceId;
          call.methodId = Demo$methods.echo.methodId;
          call.initTarget().importedCap = boot;
          writeZeroSizedList(w, Struct.getPointer(1, call.initParams()).byteOffset, CLAIMED);
        }
      });
      const ret = await p.returnOf(2).then(
        (r) => r,
        () => undefined,
      );
      const elapsed = performance.now() - started;
      expect(elapsed, `the server spent ${Math.round(elapsed)} ms on one ~100-byte message`).toBeLessThan(
        BUDGET_MS,
      );
      if (ret === undefined) {
        // Refused: with a reason, and nothing left behind.
        expect(p.log.map((m) => m.kind)).toContain("abort");
        const close = await p.closed;
        expect([ErrorCode.PROTOCOL, ErrorCode.LIMIT, ErrorCode.MALFORMED_MESSAGE]).toContain(
          close.error.code,
        );
        expect(p.server.stats()).toEqual(EMPTY);
      } else {
        await cleanUpLive(p, [1, 2]);
      }
      await expectOthersUnharmed();
    },
  );
});

describe("a peer naming things that do not exist", () => {
  it("is aborted for a Call to an import id the server never exported", async () => {
    const { peer: p } = await attack();
    p.call({ qid: 1, target: { importedCap: 42 }, method: Demo$methods.echo });
    await expectAborted(p, ErrorCode.PROTOCOL, /call to unknown export 42/);
    await expectOthersUnharmed();
  });

  it("is aborted for a Call pipelined on a question it never asked", async () => {
    const { peer: p } = await attack();
    p.call({ qid: 1, target: { promisedAnswer: { qid: 42, ops: [0] } }, method: Counter$methods.get });
    await expectAborted(p, ErrorCode.PROTOCOL, /pipelined on unknown question 42/);
    await expectOthersUnharmed();
  });

  it("is aborted for a Return to a question the server never asked", async () => {
    const { peer: p } = await attack();
    p.build((root) => {
      const ret = root.initReturn();
      ret.answerId = 9;
      ret.initResults();
    });
    await expectAborted(p, ErrorCode.PROTOCOL, /Return for unknown question 9/);
    await expectOthersUnharmed();
  });

  it("is aborted for a Finish of a question it never asked", async () => {
    const { peer: p } = await attack();
    p.finish(9);
    await expectAborted(p, ErrorCode.PROTOCOL, /Finish for unknown question 9/);
    await expectOthersUnharmed();
  });

  it("is aborted for a Release of an export it never received", async () => {
    const { peer: p } = await attack();
    p.release(9, 1);
    await expectAborted(p, ErrorCode.PROTOCOL, /export 9, which the peer does not hold/);
    await expectOthersUnharmed();
  });

  it("is aborted for a Release of more references than it was given", async () => {
    const { peer: p, boot } = await attack();
    p.release(boot, 2); // it received the bootstrap once
    await expectAborted(p, ErrorCode.PROTOCOL, /Release of 2 reference\(s\) to export 0/);
    await expectOthersUnharmed();
  });

  it("is aborted for a senderLoopback Disembargo at a capability that does not point back to it", async () => {
    // rpc.capnp, Disembargo.senderLoopback: "The receiver must verify that the target capability
    // actually resolves back to the sender's vat. Otherwise, the sender has committed a protocol
    // error and should be disconnected."
    const { peer: p, boot } = await attack();
    p.disembargo({ importedCap: boot }, { senderLoopback: 3 });
    await expectAborted(p, ErrorCode.PROTOCOL, /does not resolve to a capability the peer hosts/);
    await expectOthersUnharmed();
  });

  it("is aborted for a senderLoopback Disembargo at a question that has no results", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.sleep,
      params: (x) => {
        x.ms = 5000;
      },
    });
    // The peer cannot know where question 1's results point before they were returned to it, so
    // this cannot be a legitimate embargo; the server must not park it until the call ends.
    p.disembargo({ promisedAnswer: { qid: 1, ops: [0] } }, { senderLoopback: 3 });
    const abort = await within(p.next("abort"), 1000, "an Abort for the Disembargo");
    await expectAborted(p, ErrorCode.PROTOCOL, /Disembargo.*question 1|question 1.*no results/, abort);
    await expectOthersUnharmed();
  });

  it("is aborted for a receiverLoopback Disembargo with an embargo id the server never sent", async () => {
    const { peer: p, boot } = await attack();
    p.disembargo({ importedCap: boot }, { receiverLoopback: 3 });
    await expectAborted(p, ErrorCode.PROTOCOL, /unknown embargo 3/);
    await expectOthersUnharmed();
  });

  it("has a Resolve for an import the server does not hold ignored, the capability it names released", async () => {
    // rpc.capnp, Resolve.promiseId: "a `Resolve` may be received for a promise of which the
    // receiver has no knowledge, because it already released it earlier.  In this case, the
    // receiver should simply release the capability to which the promise resolved."
    const { peer: p, boot } = await attack();
    p.resolve(7, { cap: { senderHosted: 5 } });
    const release = (await p.next("release")).root.release;
    expect({ id: release.id, referenceCount: release.referenceCount }).toEqual({ id: 5, referenceCount: 1 });
    p.resolve(8, { exception: "broken promise nobody holds" });
    p.call({ qid: 1, target: { importedCap: boot }, method: Demo$methods.echo });
    expect((await p.returnOf(1)).isResults()).toBe(true);
    expect(p.log.map((m) => m.kind)).not.toContain("abort");
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("is aborted for a Resolve of an import that is not a promise", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.subscribe,
      params: (x, m) => {
        new RawWords(m).capPtr(Struct.getPointer(0, x).byteOffset, 0);
        x.count = 1;
      },
      caps: [{ senderHosted: 7 }],
    });
    await p.next("call"); // the server holds import 7 and is calling it
    p.resolve(7, { cap: { senderHosted: 8 } });
    await expectAborted(p, ErrorCode.PROTOCOL, /Resolve for import 7, which is not a promise/);
    await expectOthersUnharmed();
  });

  it("is aborted for reusing a question id that is still in use", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.sleep,
      params: (x) => {
        x.ms = 5000;
      },
    });
    p.call({ qid: 1, target: { importedCap: boot }, method: Demo$methods.echo });
    await expectAborted(p, ErrorCode.PROTOCOL, /question 1 is already in use/);
    await expectOthersUnharmed();
  });

  it("is aborted for a receiverHosted CapDescriptor naming an export it never received", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      caps: [{ receiverHosted: 77 }],
    });
    await expectAborted(p, ErrorCode.PROTOCOL, /receiverHosted names unknown export 77/);
    await expectOthersUnharmed();
  });
});

/** A demo whose `sleep` waits for the test to open a gate, counting the calls that started. */
class GatedDemo extends DemoServer {
  started = 0;
  open!: () => void;
  readonly #gate = new Promise<void>((resolve) => {
    this.open = resolve;
  });

  override sleep(): Promise<void> {
    this.started++;
    return this.#gate;
  }
}

describe("a peer flooding the server", () => {
  it("is aborted with LIMIT when it leaves 4 × maxQuestionsInFlight answers holding capabilities without a Finish", async () => {
    const LIMIT = 2;
    const { peer: p, boot } = await attack({ serverLimits: { maxQuestionsInFlight: LIMIT } });
    p.finish(0);
    // Each newCounter is answered at once with a capability in its results, which calls could
    // still be pipelined on: the answers stay whole until a Finish that never comes.
    for (let q = 1; q <= 4 * LIMIT; q++) {
      p.call({ qid: q, target: { importedCap: boot }, method: Demo$methods.newCounter });
      expect((await p.returnOf(q)).isResults()).toBe(true);
    }
    expect(p.server.closed).toBe(false);
    p.call({ qid: 100, target: { importedCap: boot }, method: Demo$methods.newCounter });
    await expectAborted(
      p,
      ErrorCode.LIMIT,
      /4 × maxQuestionsInFlight answered calls whose results hold capabilities without finishing them/,
    );
    await expectOthersUnharmed();
  });

  it("has the server stop reading at maxQuestionsInFlight, start nothing more, then answer every call", async () => {
    const LIMIT = 4;
    const CALLS = 10;
    const demo = new GatedDemo();
    const { peer: p, boot } = await attack({
      bootstrap: Demo.server(demo),
      serverLimits: { maxQuestionsInFlight: LIMIT },
    });
    p.finish(0); // the bootstrap answer no longer counts; the peer keeps the capability
    await waitFor(() => expect(p.server.stats().answers).toBe(0));
    let held = 0;
    for (let q = 1; q <= CALLS; q++) {
      const bytes = p.call({
        qid: q,
        target: { importedCap: boot },
        method: Demo$methods.sleep,
        params: (x) => {
          x.ms = 1;
        },
      });
      if (q > LIMIT) held += bytes.length;
    }
    // Everything sent is delivered or held: what the paused server holds is exactly the calls it
    // has not read, and it started no more than the limit.
    await waitFor(() => expect(p.transport.bufferedAmount).toBe(held));
    expect(demo.started).toBe(LIMIT);
    expect(p.server.stats().answers).toBe(LIMIT);

    demo.open();
    const answered = new Set<number>();
    const finishEach = async (): Promise<void> => {
      while (answered.size < CALLS) {
        const ret = (await p.next("return")).root.return;
        expect(ret.isResults()).toBe(true);
        answered.add(ret.answerId);
        p.finish(ret.answerId);
      }
    };
    void finishEach().catch(() => {});
    await waitFor(() => expect(answered.size).toBe(CALLS));
    expect(demo.started).toBe(CALLS);
    await cleanUpLive(p, [], false);
    await expectOthersUnharmed();
  });

  it("gets every answer for a well-behaved client with more calls in flight than maxQuestionsInFlight", async () => {
    const pair = connectPair({ limits: { maxQuestionsInFlight: 4 } });
    try {
      let answered = 0;
      const calls = Array.from({ length: 10 }, (_, i) =>
        pair.demo.echo({ payload: Uint8Array.of(i) }).then(() => void answered++),
      );
      for (const c of calls) c.catch(() => {}); // rejected at close if the test fails first
      await waitFor(() => expect(answered).toBe(10));
      await Promise.all(calls);
      pair.demo.dispose();
      await expectNoLeaks(pair.client, pair.server);
    } finally {
      pair.client.close();
      pair.server.close();
    }
    await expectOthersUnharmed();
  });

  it("cuts off a peer that keeps sending to a paused server at maxOutboundBytes instead of buffering", async () => {
    const demo = new GatedDemo();
    const { peer: p, boot } = await attack({
      bootstrap: Demo.server(demo),
      limits: { maxOutboundBytes: 8192 },
      serverLimits: { maxQuestionsInFlight: 2 },
    });
    p.finish(0);
    await waitFor(() => expect(p.server.stats().answers).toBe(0));
    // One call at a time, each given the chance to be read before the next: a server that kept
    // reading would keep the queue empty; a paused one lets it grow until the network gives up.
    let sent = 0;
    while (sent < 1000 && !p.transport.closed) {
      p.call({
        qid: ++sent,
        target: { importedCap: boot },
        method: Demo$methods.sleep,
        params: (x) => {
          x.ms = 1;
        },
      });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(p.transport.closed).toBe(true);
    expect(sent).toBeGreaterThan(10);
    const close = await p.closed;
    expect(close.reason).toMatch(/maxOutboundBytes/);
    expect(close.error).toMatchObject({ code: ErrorCode.DISCONNECTED });
    expect(demo.started).toBe(2);
    expect(p.server.stats()).toEqual(EMPTY);
    await expectOthersUnharmed();
  });

  it("fails with overloaded the call that would take the export table past maxExports; the connection lives", async () => {
    const { peer: p, boot } = await attack({ serverLimits: { maxExports: 3 } });
    // The bootstrap is export 1 of 3; two counters fit, the third does not.
    for (let q = 1; q <= 3; q++) {
      p.call({
        qid: q,
        target: { importedCap: boot },
        method: Demo$methods.newCounter,
        params: (x) => {
          x.start = 1n;
        },
      });
    }
    expect((await p.returnOf(1)).isResults()).toBe(true);
    expect((await p.returnOf(2)).isResults()).toBe(true);
    const ex = await exceptionOf(p, 3);
    expect(ex.type).toBe(rpc.Exception_Type.OVERLOADED);
    expect(ex.reason).toMatch(/^\[PARALLAX_ERR_LIMIT\] export table is full/);
    expect(p.server.stats().exports).toBe(3);
    // Released (by Finish with releaseResultCaps), the counters make room again.
    p.finish(1, true);
    p.finish(2, true);
    p.finish(3);
    await waitFor(() => expect(p.server.stats().exports).toBe(1));
    p.call({ qid: 4, target: { importedCap: boot }, method: Demo$methods.newCounter });
    expect((await p.returnOf(4)).isResults()).toBe(true);
    await cleanUpLive(p, [4]);
    await expectOthersUnharmed();
  });

  it("is aborted with LIMIT when it sends more capabilities than maxImports", async () => {
    const { peer: p, boot } = await attack({ serverLimits: { maxImports: 4 } });
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      caps: [1, 2, 3, 4, 5, 6].map((id) => ({ senderHosted: id })),
    });
    await expectAborted(p, ErrorCode.LIMIT, /import table is full \(4 capabilities\)/);
    await expectOthersUnharmed();
  });
});

describe("a peer slow to finish, and one that never does", () => {
  /** A demo whose echo notes how many of the peer's calls its connection holds unfinished. */
  class CountingDemo extends DemoServer {
    peakAnswers = 0;
    override echo(params: Demo_echo_Params, ctx?: CallContext) {
      const connection = (ctx?.origin as { connection?: RpcConnection } | undefined)?.connection;
      if (connection !== undefined) this.peakAnswers = Math.max(this.peakAnswers, connection.stats().answers);
      return super.echo(params);
    }
  }

  it("is not aborted when a burst far past 4 × maxQuestionsInFlight is answered before any Finish arrives, and its tables drain", async () => {
    // The review's scenario, with two real sessions: the caller fires its whole burst in one
    // turn, the callee answers each call at once, and the caller's Finishes queue behind its own
    // burst, so the callee holds every answer unfinished at the same moment.
    const LIMIT = 4;
    const BURST = 250 * LIMIT;
    const callee = new CountingDemo();
    const pair = connectPair({ bootstrap: Demo.server(callee), limits: { maxQuestionsInFlight: LIMIT } });
    try {
      await pair.demo.echo({ payload: Uint8Array.of(0) }); // the Bootstrap has returned
      const calls = Array.from({ length: BURST }, (_, i) =>
        pair.demo.echo({ payload: Uint8Array.of(i & 0xff) }),
      );
      const results = await Promise.all(calls);
      expect(results.map((r) => r.payload[0])).toEqual(calls.map((_, i) => i & 0xff));
      expect(callee.peakAnswers).toBeGreaterThanOrEqual(BURST);
      expect(pair.server.closed || pair.client.closed).toBe(false);
      for (const c of calls) c.dispose();
      pair.demo.dispose();
      await expectNoLeaks(pair.client, pair.server);
    } finally {
      pair.client.close();
      pair.server.close();
    }
    await expectOthersUnharmed();
  });

  it("keeps only a tombstone of answers that hold no capability: what is pipelined on them fails as before", async () => {
    const LIMIT = 2;
    const { peer: p, boot } = await attack({ serverLimits: { maxQuestionsInFlight: LIMIT } });
    p.finish(0);
    const CALLS = 50 * LIMIT;
    for (let q = 1; q <= CALLS; q++)
      p.call({ qid: q, target: { importedCap: boot }, method: Demo$methods.echo });
    p.call({
      qid: CALLS + 1,
      target: { importedCap: boot },
      method: Demo$methods.fail,
      params: (x) => {
        x.reason = "no such thing";
      },
    });
    for (let q = 1; q <= CALLS; q++) expect((await p.returnOf(q)).isResults()).toBe(true);
    expect((await exceptionOf(p, CALLS + 1)).reason).toBe("[PARALLAX_ERR_FAILED] no such thing");
    expect(p.server.closed).toBe(false);
    expect(p.server.stats().answers).toBe(CALLS + 1);
    // Pipelined on results without a capability: no capability there. On a failed call: its error.
    p.call({ qid: 200, target: { promisedAnswer: { qid: 1, ops: [0] } }, method: Counter$methods.get });
    p.call({ qid: 201, target: { promisedAnswer: { qid: CALLS + 1 } }, method: Counter$methods.get });
    const none = await exceptionOf(p, 200);
    expect(none.reason).toBe(`[${ErrorCode.FAILED}] ${nullCapError().message}`);
    expect((await exceptionOf(p, 201)).reason).toBe("[PARALLAX_ERR_FAILED] no such thing");
    // A question id still in use stays in use, however little is kept of it.
    p.call({ qid: 2, target: { importedCap: boot }, method: Demo$methods.echo });
    await expectAborted(p, ErrorCode.PROTOCOL, /question 2 is already in use/);
    await expectOthersUnharmed();
  });

  it("drains to empty once a slow peer's Finishes arrive, with the connection alive", async () => {
    const LIMIT = 2;
    const { peer: p, boot } = await attack({ serverLimits: { maxQuestionsInFlight: LIMIT } });
    const CALLS = 50 * LIMIT;
    for (let q = 1; q <= CALLS; q++)
      p.call({ qid: q, target: { importedCap: boot }, method: Demo$methods.echo });
    for (let q = 1; q <= CALLS; q++) expect((await p.returnOf(q)).isResults()).toBe(true);
    expect(p.server.stats().answers).toBe(CALLS + 1); // the Bootstrap's answer too
    for (let q = 1; q <= CALLS; q++) p.finish(q);
    await waitFor(() => expect(p.server.stats().answers).toBe(1));
    expect(p.server.closed).toBe(false);
    // Finished, the ids are free again.
    p.call({ qid: 1, target: { importedCap: boot }, method: Demo$methods.echo });
    expect((await p.returnOf(1)).isResults()).toBe(true);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("is aborted with LIMIT at maxUnfinishedAnswers when it never sends Finish", async () => {
    const MAX = 40;
    const { peer: p, boot } = await attack({
      serverLimits: { maxQuestionsInFlight: 2, maxUnfinishedAnswers: MAX },
    });
    p.finish(0);
    await waitFor(() => expect(p.server.stats().answers).toBe(0));
    for (let q = 1; q <= MAX; q++) {
      p.call({ qid: q, target: { importedCap: boot }, method: Demo$methods.echo });
      expect((await p.returnOf(q)).isResults()).toBe(true);
    }
    expect(p.server.closed).toBe(false);
    expect(p.server.stats().answers).toBe(MAX);
    p.call({ qid: MAX + 1, target: { importedCap: boot }, method: Demo$methods.echo });
    await expectAborted(
      p,
      ErrorCode.LIMIT,
      /more than maxUnfinishedAnswers \(40\) calls without finishing them/,
    );
    await expectOthersUnharmed();
  });
});

describe("a peer sending wrong-typed arguments", () => {
  it("fails the call with BAD_ARGUMENT when the params are a list where a struct is expected", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      content: (c, m) => {
        const w = new RawWords(m);
        w.listPtr(c.byteOffset, w.bytes(Uint8Array.of(1, 2, 3)), ElementSize.BYTE, 3);
      },
    });
    const ex = await exceptionOf(p, 1);
    expect(ex.reason).toMatch(/^\[PARALLAX_ERR_BAD_ARGUMENT\] /);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("fails the call with BAD_ARGUMENT when a Data field holds a struct", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      content: (c, m) => paramsStruct(c, m, [(w, at) => w.structPtr(at, w.alloc(2), 1, 1)]),
    });
    const ex = await exceptionOf(p, 1);
    expect(ex.reason).toMatch(/^\[PARALLAX_ERR_BAD_ARGUMENT\] /);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("fails the call with BAD_ARGUMENT when a Data field holds a list of 32-bit numbers", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      content: (c, m) =>
        paramsStruct(c, m, [(w, at) => w.listPtr(at, w.alloc(2), ElementSize.FOUR_BYTES, 3)]),
    });
    const ex = await exceptionOf(p, 1);
    expect(ex.reason).toMatch(/^\[PARALLAX_ERR_BAD_ARGUMENT\] /);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("fails the call with BAD_ARGUMENT when a Text field holds a struct", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.fail,
      content: (c, m) => paramsStruct(c, m, [(w, at) => w.structPtr(at, w.alloc(1), 1, 0)]),
    });
    const ex = await exceptionOf(p, 1);
    expect(ex.reason).toMatch(/^\[PARALLAX_ERR_BAD_ARGUMENT\] /);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("accepts Text where Data is expected, byte for byte: the two are the same on the wire", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.echo,
      content: (c, m) =>
        paramsStruct(c, m, [
          (w, at) => w.listPtr(at, w.bytes(Uint8Array.of(104, 105, 0)), ElementSize.BYTE, 3),
        ]),
    });
    const ret = await p.returnOf(1);
    expect(ret.isResults()).toBe(true);
    const results = Struct.getStruct(0, Demo$methods.echo.Results, ret.results);
    expect([...results.payload]).toEqual([104, 105, 0]);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });
});

describe("a peer calling what the target does not implement", () => {
  it("gets unimplemented in the Return for an unknown method id, and the connection lives", async () => {
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      interfaceId: Demo$methods.echo.interfaceId,
      methodId: 99,
    });
    const ex = await exceptionOf(p, 1);
    expect(ex.type).toBe(rpc.Exception_Type.UNIMPLEMENTED);
    expect(ex.reason).toMatch(/does not implement method 99/);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("gets unimplemented in the Return for an unknown interface id, and the connection lives", async () => {
    const { peer: p, boot } = await attack();
    p.call({ qid: 1, target: { importedCap: boot }, interfaceId: 0x1234n, methodId: 0 });
    const ex = await exceptionOf(p, 1);
    expect(ex.type).toBe(rpc.Exception_Type.UNIMPLEMENTED);
    expect(ex.reason).toMatch(/interface 0x1234/);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });
});

describe("a peer echoing messages back as Unimplemented", () => {
  it("has an Unimplemented echo of a Call the server never sent ignored", async () => {
    const { peer: p, boot } = await attack();
    p.build((root) => {
      const call = root.initUnimplemented().initCall();
      call.questionId = 3;
      call.initTarget().importedCap = 1;
    });
    p.build((root) => {
      root.initUnimplemented().initBootstrap().questionId = 4;
    });
    p.call({ qid: 1, target: { importedCap: boot }, method: Demo$methods.echo });
    expect((await p.returnOf(1)).isResults()).toBe(true);
    expect(p.log.map((m) => m.kind)).toEqual(["return", "return"]);
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });

  it("treats an Unimplemented echo of the server's own Call as that question failing", async () => {
    // rpc.capnp, Message.unimplemented: "For any message type that introduces a question, if the
    // message comes back unimplemented, the original sender may simply treat it as if the question
    // failed with an exception."
    const { peer: p, boot } = await attack();
    p.call({
      qid: 1,
      target: { importedCap: boot },
      method: Demo$methods.subscribe,
      params: (x, m) => {
        new RawWords(m).capPtr(Struct.getPointer(0, x).byteOffset, 0);
        x.count = 3;
      },
      caps: [{ senderHosted: 7 }],
    });
    const event = await p.next("call");
    p.unimplemented(event.root);
    const ex = await exceptionOf(p, 1);
    expect(ex.type).toBe(rpc.Exception_Type.UNIMPLEMENTED);
    const release = (await p.next("release")).root.release;
    expect({ id: release.id, referenceCount: release.referenceCount }).toEqual({ id: 7, referenceCount: 1 });
    await cleanUpLive(p, [1]);
    await expectOthersUnharmed();
  });
});

describe("a peer sending level 3 and 4 messages", () => {
  const cases: [string, (root: rpc.Message, boot: number) => void, (echo: rpc.Message) => void][] = [
    [
      "Provide",
      (root, boot) => {
        const m = root.initProvide();
        m.questionId = 21;
        m.initTarget().importedCap = boot;
      },
      (echo) => expect(echo.provide.questionId).toBe(21),
    ],
    [
      "Accept",
      (root) => {
        root.initAccept().questionId = 22;
      },
      (echo) => expect(echo.accept.questionId).toBe(22),
    ],
    [
      "Join",
      (root, boot) => {
        const m = root.initJoin();
        m.questionId = 23;
        m.initTarget().importedCap = boot;
      },
      (echo) => expect(echo.join.questionId).toBe(23),
    ],
  ];

  it.each(cases)(
    "answers %s with Unimplemented echoing it, and the connection lives",
    async (_n, build, check) => {
      const { peer: p, boot } = await attack();
      const before = p.server.stats();
      p.build((root) => build(root, boot));
      const echo = (await p.next("unimplemented")).root.unimplemented;
      check(echo);
      expect(p.server.stats()).toEqual(before);
      p.call({ qid: 1, target: { importedCap: boot }, method: Demo$methods.echo });
      expect((await p.returnOf(1)).isResults()).toBe(true);
      await cleanUpLive(p, [1]);
      await expectOthersUnharmed();
    },
  );
});
