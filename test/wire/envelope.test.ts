import { Message, Struct } from "capnp-ts";
import { describe, expect, it } from "vitest";
import {
  buildCall,
  buildReturn,
  encodeFinish,
  encodeRelease,
  readEnvelope,
} from "../../src/wire/envelope.js";
import * as rpc from "../../src/wire/gen/capnp/rpc.js";
import { decodeRpcMessage, encodeRpcMessage } from "../../src/wire/message-codec.js";
import { type AnswerId, type QuestionId, newExportId, newQuestionId } from "../../src/wire/rpc-ids.js";
import { Demo_echo_Params } from "../../src/wire/gen/demo.js";

const LIMITS = { maxSegments: 512, maxTraversalWords: 1 << 20, maxNestingDepth: 64 };

function generated(build: (root: rpc.Message) => void): Uint8Array {
  const m = new Message();
  build(m.initRoot(rpc.Message));
  return new Uint8Array(m.toArrayBuffer());
}

describe("hand-written envelopes", () => {
  it("encode Finish and Release to the very bytes the generated classes produce", () => {
    expect(encodeFinish(newQuestionId(7), false)).toEqual(
      generated((r) => {
        const f = r.initFinish();
        f.questionId = 7;
        f.releaseResultCaps = false;
      }),
    );
    expect(encodeFinish(newQuestionId(0xfffffffe), true)).toEqual(
      generated((r) => {
        r.initFinish().questionId = 0xfffffffe;
      }),
    );
    expect(encodeRelease(newExportId(3), 42)).toEqual(
      generated((r) => {
        const rel = r.initRelease();
        rel.id = 3;
        rel.referenceCount = 42;
      }),
    );
  });

  it("write Calls that the generated classes read back field by field, for both target kinds", () => {
    for (const target of [
      { kind: "import", id: 9 } as const,
      { kind: "answer", questionId: 4, ops: [] } as const,
      { kind: "answer", questionId: 5, ops: [0, 3, 1] } as const,
    ]) {
      const { message, payload } = buildCall(newQuestionId(12), target, 0xfedcba9876543210n, 3);
      Struct.initStructAt(0, Demo_echo_Params, payload).payload = new Uint8Array([1, 2, 3]);
      const { root } = decodeRpcMessage(encodeRpcMessage(message), LIMITS);
      const call = root.call;
      expect([call.questionId, call.interfaceId, call.methodId]).toEqual([12, 0xfedcba9876543210n, 3]);
      expect(call.sendResultsTo.isCaller()).toBe(true);
      expect(call.allowThirdPartyTailCall).toBe(false);
      if (target.kind === "import") expect(call.target.importedCap).toBe(9);
      else {
        const pa = call.target.promisedAnswer;
        expect(pa.questionId).toBe(target.questionId);
        expect(pa.hasTransform() ? pa.transform.map((op) => op.getPointerField) : []).toEqual(target.ops);
      }
      expect([...Struct.getStruct(0, Demo_echo_Params, call.params).payload]).toEqual([1, 2, 3]);
    }
  });

  it("write results Returns that the generated classes read back", () => {
    const { message, payload } = buildReturn(77 as AnswerId);
    Struct.initStructAt(0, Demo_echo_Params, payload).payload = new Uint8Array([9]);
    const { root } = decodeRpcMessage(encodeRpcMessage(message), LIMITS);
    expect(root.which()).toBe(rpc.Message_Which.RETURN);
    expect(root.return.answerId).toBe(77);
    expect(root.return.releaseParamCaps).toBe(false);
    expect(root.return.which()).toBe(rpc.Return_Which.RESULTS);
    expect([...Struct.getStruct(0, Demo_echo_Params, root.return.results).payload]).toEqual([9]);
  });

  it("read what the generated classes write: Finish, Release, Call and results Return", () => {
    const finish = readEnvelope(
      generated((r) => {
        r.initFinish().questionId = 5;
      }),
    );
    expect(finish).toEqual({ kind: "finish", questionId: 5, releaseResultCaps: true });
    const call = readEnvelope(
      generated((r) => {
        const c = r.initCall();
        c.questionId = 1;
        c.interfaceId = 2n;
        c.methodId = 3;
        const pa = c.initTarget().initPromisedAnswer();
        pa.questionId = 8;
        pa.initTransform(2).get(1).getPointerField = 6;
        c.initParams();
      }),
    );
    expect(call).toMatchObject({ kind: "call", questionId: 1, interfaceId: 2n, methodId: 3, toCaller: true });
    expect(call?.kind === "call" && call.target).toEqual({ kind: "answer", questionId: 8, ops: [6] });
    const ret = readEnvelope(
      generated((r) => {
        const t = r.initReturn();
        t.answerId = 4;
        t.initResults();
      }),
    );
    expect(ret).toMatchObject({ kind: "results", answerId: 4, releaseParamCaps: true });
  });

  it("leave everything else to the full decoder: other kinds, several segments, truncation, garbage", () => {
    const bootstrap = generated((r) => {
      r.initBootstrap().questionId = 1;
    });
    expect(readEnvelope(bootstrap)).toBeUndefined();
    expect(
      readEnvelope(
        generated((r) => {
          r.initReturn().initException().reason = "x";
        }),
      ),
    ).toBeUndefined();
    const finish = encodeFinish(newQuestionId(1), false);
    expect(readEnvelope(finish.subarray(0, finish.length - 8))).toBeUndefined();
    const twoSegments = new Uint8Array(finish.length + 8);
    twoSegments.set(finish);
    new DataView(twoSegments.buffer).setUint32(0, 1, true);
    expect(readEnvelope(twoSegments)).toBeUndefined();
    const garbage = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
    expect(readEnvelope(garbage)).toBeUndefined();
    const q: QuestionId = newQuestionId(1);
    expect(q).toBe(1);
  });
});
