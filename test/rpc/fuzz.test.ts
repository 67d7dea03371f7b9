/**
 * Seeded fuzzing of the RPC engine with mutated golden messages.
 *
 * The golden messages are built in code (deterministic: no fixture files to drift), one per kind
 * a peer may send, plus a multi-segment (far-pointer root) copy of each. Every case mutates one or
 * more of them (bit flips, byte and word overwrites, truncation with and without a fixed-up
 * segment table, splicing two messages, duplicating / removing / swapping segments, corrupting the
 * segment table, garbage bodies) and feeds the mutant to a live `RpcConnection` serving the demo
 * bootstrap, followed by a sentinel Bootstrap. The case passes if the sentinel is answered (the
 * connection is alive and consistent) or the connection closed with PROTOCOL, MALFORMED_MESSAGE
 * or LIMIT (or because the mutant was itself an Abort), with its tables empty. Connections are
 * recycled every `CASES_PER_CONNECTION` cases and checked for leaks when they close. No exception
 * may reach the process, and a control connection must still answer at the end.
 *
 * Runs: `npm test` runs DEFAULT_CASES cases with a fixed seed.
 *   PARALLAX_FUZZ_CASES=<n>   run n cases instead (a longer run: e.g. 200000);
 *   PARALLAX_FUZZ_SEED=<n>    use another seed (a failure prints the seed, the case index and the
 *                             mutant's bytes, so it can be replayed);
 *   PARALLAX_FUZZ_VERBOSE=1   print how the cases ended (answered, aborted, refused by the transport).
 */
import { Struct } from "capnp-ts";
import { describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import type * as rpc from "../../src/wire/gen/capnp/rpc.js";
import { Counter$methods, Demo$methods } from "../../src/wire/gen/demo.js";
import { encodeRpcMessage, newRpcMessage } from "../../src/wire/message-codec.js";
import { frameOfSegments, segmentsOfFrame, segmentTableSize } from "../helpers/frames.js";
import { EMPTY_STATS as EMPTY, expectNoLeaks } from "../helpers/rpc-stats.js";
import { within } from "../helpers/wait.js";
import { connectPair } from "./harness.js";
import { RawPeer, RawWords, trapProcessErrors, writeCall, writeCapDesc, writeTarget } from "./raw-peer.js";

const DEFAULT_CASES = 3000;
const DEFAULT_SEED = 0x5eed_c0de;
const CASES_PER_CONNECTION = 40;
const SENTINEL_BASE = 0x4000_0000;
/** How long one case may take before it counts as a hang (a failure detector, not a wait). */
const CASE_DEADLINE_MS = 2000;
/** One small message must not keep the server busy longer than this (the event loop is shared). */
const CASE_BUDGET_MS = 1000;

const CASES = Number(process.env.PARALLAX_FUZZ_CASES ?? DEFAULT_CASES);
const SEED = Number(process.env.PARALLAX_FUZZ_SEED ?? DEFAULT_SEED) >>> 0;

const ALLOWED_CLOSE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.PROTOCOL,
  ErrorCode.MALFORMED_MESSAGE,
  ErrorCode.LIMIT,
]);

// ---- a tiny deterministic PRNG ---------------------------------------------------------------------

/** mulberry32: 32 bits of state, good enough to drive a fuzzer, identical on every platform. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  u32(): number {
    return (this.int(0x10000) << 16) | this.int(0x10000);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
}

// ---- golden messages -------------------------------------------------------------------------------

/** What a fresh target connection has: the bootstrap as export 0, a counter in question 1's results. */
const BOOT = 0;
const COUNTER_QUESTION = 1;

function encode(fill: (root: rpc.Message, message: import("capnp-ts").Message) => void): Uint8Array {
  const { message, root } = newRpcMessage();
  fill(root, message);
  return encodeRpcMessage(message);
}

function goldenMessages(): { name: string; bytes: Uint8Array }[] {
  const counter = { promisedAnswer: { qid: COUNTER_QUESTION, ops: [0] } };
  const list: [string, Uint8Array][] = [
    [
      "bootstrap",
      encode((r) => {
        r.initBootstrap().questionId = 2;
      }),
    ],
    [
      "call echo",
      encode((r, m) =>
        writeCall(r.initCall(), m, {
          qid: 3,
          target: { importedCap: BOOT },
          method: Demo$methods.echo,
          params: (p) => {
            p.payload = new TextEncoder().encode("hello, fuzz");
          },
        }),
      ),
    ],
    [
      "call newCounter",
      encode((r, m) =>
        writeCall(r.initCall(), m, {
          qid: 4,
          target: { importedCap: BOOT },
          method: Demo$methods.newCounter,
          params: (p) => {
            p.start = 5n;
          },
        }),
      ),
    ],
    [
      "call pipelined inc",
      encode((r, m) =>
        writeCall(r.initCall(), m, {
          qid: 5,
          target: counter,
          method: Counter$methods.inc,
          params: (p) => {
            p.by = 2n;
          },
        }),
      ),
    ],
    [
      "call subscribe with a capability",
      encode((r, m) =>
        writeCall(r.initCall(), m, {
          qid: 6,
          target: { importedCap: BOOT },
          method: Demo$methods.subscribe,
          params: (p) => {
            new RawWords(m).capPtr(Struct.getPointer(0, p).byteOffset, 0);
            p.count = 2;
          },
          caps: [{ senderHosted: 9 }],
        }),
      ),
    ],
    [
      "call echo with every CapDescriptor kind",
      encode((r, m) =>
        writeCall(r.initCall(), m, {
          qid: 7,
          target: { importedCap: BOOT },
          method: Demo$methods.echo,
          params: (p) => {
            p.payload = Uint8Array.of(1, 2, 3);
          },
          caps: [
            { receiverHosted: BOOT },
            { senderPromise: 11 },
            { none: true },
            { receiverAnswer: { qid: COUNTER_QUESTION, ops: [0] } },
            { thirdPartyHosted: { vineId: 13 } },
          ],
        }),
      ),
    ],
    [
      "call sleep",
      encode((r, m) =>
        writeCall(r.initCall(), m, {
          qid: 8,
          target: { importedCap: BOOT },
          method: Demo$methods.sleep,
          params: (p) => {
            p.ms = 1;
          },
        }),
      ),
    ],
    [
      "return results with a capability",
      encode((r) => {
        const ret = r.initReturn();
        ret.answerId = 0;
        ret.releaseParamCaps = false;
        const payload = ret.initResults();
        const results = Struct.initStructAt(0, Demo$methods.newCounter.Results, payload);
        void results;
        writeCapDesc(payload.initCapTable(1).get(0), { senderHosted: 3 });
      }),
    ],
    [
      "return exception",
      encode((r) => {
        const ret = r.initReturn();
        ret.answerId = 0;
        ret.initException().reason = "it went wrong";
      }),
    ],
    [
      "finish",
      encode((r) => {
        const f = r.initFinish();
        f.questionId = COUNTER_QUESTION;
        f.releaseResultCaps = true;
      }),
    ],
    [
      "release",
      encode((r) => {
        const rel = r.initRelease();
        rel.id = BOOT;
        rel.referenceCount = 1;
      }),
    ],
    [
      "resolve to a capability",
      encode((r) => {
        const res = r.initResolve();
        res.promiseId = 11;
        writeCapDesc(res.initCap(), { senderHosted: 12 });
      }),
    ],
    [
      "resolve to an exception",
      encode((r) => {
        const res = r.initResolve();
        res.promiseId = 11;
        res.initException().reason = "broken";
      }),
    ],
    [
      "disembargo senderLoopback",
      encode((r) => {
        const d = r.initDisembargo();
        writeTarget(d.initTarget(), counter);
        d.context.senderLoopback = 3;
      }),
    ],
    [
      "disembargo receiverLoopback",
      encode((r) => {
        const d = r.initDisembargo();
        writeTarget(d.initTarget(), { importedCap: BOOT });
        d.context.receiverLoopback = 0;
      }),
    ],
    [
      "unimplemented call",
      encode((r) => {
        const call = r.initUnimplemented().initCall();
        call.questionId = 3;
        call.initTarget().importedCap = 1;
      }),
    ],
    [
      "join",
      encode((r) => {
        const j = r.initJoin();
        j.questionId = 14;
        j.initTarget().importedCap = BOOT;
      }),
    ],
  ];
  const out = list.map(([name, bytes]) => ({ name, bytes }));
  for (const { name, bytes } of [...out]) out.push({ name: `${name} (far root)`, bytes: farRoot(bytes) });
  return out;
}

// ---- framing helpers -------------------------------------------------------------------------------

/** The same message with its root reached through a far pointer into a second segment. */
function farRoot(bytes: Uint8Array): Uint8Array {
  const [only] = segmentsOfFrame(bytes);
  const seg0 = new Uint8Array(8);
  // A single far pointer (kind 2) to word 0 of segment 1, where the original root pointer sits.
  new DataView(seg0.buffer).setUint32(4, 1, true);
  seg0[0] = 2;
  return frameOfSegments([seg0, only as Uint8Array]);
}

function padWords(b: Uint8Array): Uint8Array {
  if (b.length % 8 === 0) return b;
  const out = new Uint8Array(b.length + (8 - (b.length % 8)));
  out.set(b);
  return out;
}

// ---- mutations -------------------------------------------------------------------------------------

const INTERESTING_U32 = [
  0, 1, 2, 3, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff,
];

type Mutator = (rng: Rng, bytes: Uint8Array, goldens: readonly Uint8Array[]) => Uint8Array;

/** Start of the first segment (the bytes after the segment table), when the table is sane. */
function bodyStart(bytes: Uint8Array): number {
  if (bytes.length < 4) return 0;
  const count = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) + 1;
  const header = segmentTableSize(count);
  return count <= 64 && header < bytes.length ? header : 0;
}

function segmentsOf(bytes: Uint8Array): Uint8Array[] | undefined {
  try {
    const segs = segmentsOfFrame(bytes);
    return segs.length <= 64 && frameOfSegments(segs).length === bytes.length ? segs : undefined;
  } catch {
    return undefined;
  }
}

const MUTATORS: Record<string, Mutator> = {
  flipBits(rng, b) {
    const out = b.slice();
    const start = rng.chance(0.9) ? bodyStart(b) : 0;
    for (let n = 1 + rng.int(8); n > 0; n--) {
      const i = start + rng.int(out.length - start);
      out[i] = (out[i] as number) ^ (1 << rng.int(8));
    }
    return out;
  },
  overwriteBytes(rng, b) {
    const out = b.slice();
    const start = bodyStart(b);
    for (let n = 1 + rng.int(4); n > 0; n--) {
      out[start + rng.int(out.length - start)] = rng.pick([0, 0xff, 0x7f, 0x80, 1, 2, 3, rng.int(256)]);
    }
    return out;
  },
  overwriteWord(rng, b) {
    const out = b.slice();
    const start = bodyStart(b);
    const words = (out.length - start) >> 3;
    if (words === 0) return out;
    const at = start + rng.int(words) * 8;
    const dv = new DataView(out.buffer);
    dv.setUint32(at, rng.chance(0.5) ? rng.pick(INTERESTING_U32) : rng.u32(), true);
    dv.setUint32(at + 4, rng.chance(0.5) ? rng.pick(INTERESTING_U32) : rng.u32(), true);
    return out;
  },
  truncate(rng, b) {
    return b.slice(0, rng.int(b.length));
  },
  truncateWithTable(rng, b) {
    const segs = segmentsOf(b);
    if (segs === undefined) return b.slice(0, rng.int(b.length));
    const i = rng.int(segs.length);
    const s = segs[i] as Uint8Array;
    segs[i] = s.slice(0, rng.int(s.length / 8 + 1) * 8);
    return frameOfSegments(segs);
  },
  extendWithGarbage(rng, b) {
    const segs = segmentsOf(b);
    if (segs === undefined) return b;
    const i = rng.int(segs.length);
    const extra = new Uint8Array(8 * (1 + rng.int(4)));
    for (let k = 0; k < extra.length; k++) extra[k] = rng.int(256);
    const s = segs[i] as Uint8Array;
    const grown = new Uint8Array(s.length + extra.length);
    grown.set(s);
    grown.set(extra, s.length);
    segs[i] = grown;
    return frameOfSegments(segs);
  },
  splice(rng, b, goldens) {
    const other = rng.pick(goldens);
    const a = segmentsOf(b);
    const c = segmentsOf(other);
    if (a === undefined || c === undefined) return b;
    const sa = a[0] as Uint8Array;
    const sc = c[0] as Uint8Array;
    const cut = rng.int(Math.min(sa.length, sc.length) / 8 + 1) * 8;
    const joined = new Uint8Array(cut + sc.length - Math.min(cut, sc.length));
    joined.set(sa.subarray(0, cut));
    joined.set(sc.subarray(Math.min(cut, sc.length)), cut);
    a[0] = padWords(joined);
    return frameOfSegments(a);
  },
  duplicateSegment(rng, b) {
    const segs = segmentsOf(b);
    if (segs === undefined) return b;
    segs.splice(rng.int(segs.length + 1), 0, (segs[rng.int(segs.length)] as Uint8Array).slice());
    return frameOfSegments(segs);
  },
  removeSegment(rng, b) {
    const segs = segmentsOf(b);
    if (segs === undefined || segs.length < 2) return b.slice(0, 8);
    segs.splice(rng.int(segs.length), 1);
    return frameOfSegments(segs);
  },
  swapSegments(rng, b) {
    const segs = segmentsOf(b);
    if (segs === undefined || segs.length < 2) return b;
    segs.reverse();
    return rng.chance(0.5) ? frameOfSegments(segs) : frameOfSegments([...segs, new Uint8Array(8)]);
  },
  corruptTable(rng, b) {
    const out = b.slice();
    if (out.length < 8) return out;
    const dv = new DataView(out.buffer);
    const count = Math.min(dv.getUint32(0, true) + 1, 8);
    const field = rng.int(count + 1); // 0: the count; k: size of segment k-1
    const at = field === 0 ? 0 : 4 + (field - 1) * 4;
    if (at + 4 > out.length) return out;
    dv.setUint32(
      at,
      rng.chance(0.5) ? rng.pick(INTERESTING_U32) : dv.getUint32(at, true) + rng.int(5) - 2,
      true,
    );
    return out;
  },
  garbageBody(rng, b) {
    const words = 1 + rng.int(Math.max(1, (b.length - 8) >> 3));
    const body = new Uint8Array(words * 8);
    for (let k = 0; k < body.length; k++) body[k] = rng.int(256);
    return frameOfSegments([body]);
  },
};
const MUTATOR_NAMES = Object.keys(MUTATORS);

function mutate(rng: Rng, goldens: readonly { name: string; bytes: Uint8Array }[]) {
  const golden = rng.pick(goldens);
  let bytes = golden.bytes;
  const ops: string[] = [];
  for (let n = rng.chance(0.7) ? 1 : 2 + rng.int(2); n > 0; n--) {
    const op = rng.pick(MUTATOR_NAMES);
    ops.push(op);
    bytes = (MUTATORS[op] as Mutator)(
      rng,
      bytes,
      goldens.map((g) => g.bytes),
    );
  }
  return { golden: golden.name, ops, bytes };
}

// ---- the target ------------------------------------------------------------------------------------

async function freshTarget(): Promise<RawPeer> {
  const peer = RawPeer.open();
  const boot = await peer.bootstrapped(0);
  expect(boot).toBe(BOOT);
  peer.call({
    qid: COUNTER_QUESTION,
    target: { importedCap: BOOT },
    method: Demo$methods.newCounter,
    params: (p) => {
      p.start = 1n;
    },
  });
  expect((await peer.returnOf(COUNTER_QUESTION)).isResults()).toBe(true);
  return peer;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/**
 * Checks how a connection ended: with an allowed code, or because the mutant was itself an Abort
 * (which the server obeys); and with its tables empty.
 */
function expectAcceptableClose(peer: RawPeer, error: ParallaxError): void {
  expect(error).toBeInstanceOf(ParallaxError);
  const ok =
    ALLOWED_CLOSE_CODES.has(error.code) ||
    (error.code === ErrorCode.DISCONNECTED && error.message.startsWith("peer aborted the connection"));
  expect(ok, `closed with ${error.code}: ${error.message}`).toBe(true);
  expect(peer.server.stats()).toEqual(EMPTY);
}

describe("the RPC engine under seeded fuzzing", () => {
  it(
    `survives ${CASES} mutated golden messages (seed ${SEED}), and another connection is still served`,
    async () => {
      const trap = trapProcessErrors();
      const rng = new Rng(SEED);
      const goldens = goldenMessages();
      const tally = { answered: 0, aborted: 0, refused: 0, peerAbort: 0, connections: 0 };
      let peer: RawPeer | undefined;
      let onPeer = 0;
      let ran = 0;
      try {
        const started = performance.now();
        for (let i = 0; i < CASES; i++) {
          if (process.env.PARALLAX_FUZZ_VERBOSE && i % 1000 === 0) {
            const heap = Math.round(process.memoryUsage().heapUsed / 2 ** 20);
            console.log(`case ${i}: ${Math.round(performance.now() - started)} ms, heap ${heap} MiB`);
          }
          const { golden, ops, bytes } = mutate(rng, goldens);
          try {
            if (peer === undefined) {
              peer = await freshTarget();
              onPeer = 0;
              tally.connections++;
            }
            const target: RawPeer = peer;
            const t0 = performance.now();
            const sentinel = SENTINEL_BASE + i;
            target.send(bytes);
            target.bootstrap(sentinel);
            const outcome = await within(
              target.returnOf(sentinel).then(
                () => "answered" as const,
                () => "closed" as const,
              ),
              CASE_DEADLINE_MS,
              `case ${i}: an answer or a close`,
            );
            const dt = performance.now() - t0;
            expect(dt, `the case kept the server busy for ${Math.round(dt)} ms`).toBeLessThan(CASE_BUDGET_MS);
            if (outcome === "answered") {
              tally.answered++;
              target.finish(sentinel, true);
              if (++onPeer >= CASES_PER_CONNECTION) {
                target.close();
                await target.closed;
                expect(target.server.stats()).toEqual(EMPTY);
                peer = undefined;
              }
            } else {
              const close = await target.closed;
              expectAcceptableClose(target, close.error);
              if (target.log.some((m) => m.kind === "abort")) tally.aborted++;
              else if (close.error.code === ErrorCode.DISCONNECTED) tally.peerAbort++;
              else tally.refused++;
              peer = undefined;
            }
            expect(trap.errors, "an exception escaped to the process").toEqual([]);
            ran++;
          } catch (err) {
            const why = err instanceof Error ? err.message : String(err);
            throw new Error(
              `fuzz case ${i} failed — replay with PARALLAX_FUZZ_SEED=${SEED} PARALLAX_FUZZ_CASES=${i + 1}\n` +
                `golden: ${golden}; mutations: ${ops.join(", ")}\nmutant: ${hex(bytes)}\n${why}`,
              { cause: err },
            );
          }
        }
      } finally {
        peer?.close();
        trap.stop();
      }
      if (process.env.PARALLAX_FUZZ_VERBOSE) console.log({ seed: SEED, cases: ran, ...tally });
      expect(ran).toBe(CASES);
      expect(ran).toBeGreaterThanOrEqual(Math.min(CASES, 2000));
      // The mutants reach every layer: some are answered around, some refused by the transport,
      // some aborted by the engine.
      expect(tally.answered).toBeGreaterThan(CASES / 10);
      expect(tally.aborted).toBeGreaterThan(CASES / 20);
      expect(tally.refused).toBeGreaterThan(CASES / 50);

      const control = connectPair();
      try {
        {
          using reply = control.demo.echo({ payload: Uint8Array.of(4, 2) });
          expect([...(await reply).payload]).toEqual([4, 2]);
        }
        control.demo.dispose();
        await expectNoLeaks(control.client, control.server);
      } finally {
        control.client.close();
        control.server.close();
      }
      expect(trap.errors).toEqual([]);
    },
    Math.max(20_000, CASES * 10),
  );
});
