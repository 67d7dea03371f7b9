/**
 * rpc.capnp compiled by our plugin (src/wire/gen/capnp/rpc.ts) against the compiled classes that
 * capnp-ts ships (capnp-ts/src/std/rpc.capnp.js), for every message kind Parallax speaks.
 *
 * Both sets of classes use capnp-ts's accessor names (getX/setX/initX/isX/which), so one builder
 * and one reader drive either: whichever classes the root belongs to do the writing and reading.
 * capnp-ts ships a newer rpc.capnp than capnp 0.9.2's; the fields only the newer one has
 * (e.g. Finish.requireEarlyCancellationWorkaround) are left out of the comparison.
 */
import { Message as CapnpMessage, Pointer, type Struct, type StructCtor } from "capnp-ts";
import * as std from "capnp-ts/src/std/rpc.capnp.js";
import { describe, expect, it } from "vitest";
import * as R from "../../src/wire/gen/capnp/rpc.js";
import * as E from "../gen/everything.js";

type Build = (m: R.Message) => void;

function serialize<T extends Struct>(Root: StructCtor<T>, build: Build): Uint8Array {
  const m = new CapnpMessage();
  build(m.initRoot(Root) as unknown as R.Message);
  return new Uint8Array(m.toArrayBuffer());
}

function readWith<T extends Struct>(Root: StructCtor<T>, bytes: Uint8Array): R.Message {
  return new CapnpMessage(bytes.slice().buffer, false).getRoot(Root) as unknown as R.Message;
}

/** Fills an AnyPointer (payload content) with a copy of a Point. */
function initPoint(p: Pointer, x: number, y: number): void {
  const src = new CapnpMessage().initRoot(E.Point);
  src.setX(x);
  src.setY(y);
  Pointer.copyFrom(src, p);
}

// ---- one reader for both sets of classes ------------------------------------------------------

function readException(e: R.Exception): unknown {
  return { reason: e.getReason(), type: e.getType(), trace: e.getTrace() };
}

function readPromisedAnswer(pa: R.PromisedAnswer): unknown {
  return {
    questionId: pa.getQuestionId(),
    transform: pa
      .getTransform()
      .map((op) => (op.isNoop() ? { noop: null } : { getPointerField: op.getGetPointerField() })),
  };
}

function readTarget(t: R.MessageTarget): unknown {
  return t.which() === R.MessageTarget_Which.IMPORTED_CAP
    ? { importedCap: t.getImportedCap() }
    : { promisedAnswer: readPromisedAnswer(t.getPromisedAnswer()) };
}

function readCapDescriptor(d: R.CapDescriptor): unknown {
  const attachedFd = d.getAttachedFd();
  switch (d.which()) {
    case R.CapDescriptor_Which.NONE:
      return { none: null, attachedFd };
    case R.CapDescriptor_Which.SENDER_HOSTED:
      return { senderHosted: d.getSenderHosted(), attachedFd };
    case R.CapDescriptor_Which.SENDER_PROMISE:
      return { senderPromise: d.getSenderPromise(), attachedFd };
    case R.CapDescriptor_Which.RECEIVER_HOSTED:
      return { receiverHosted: d.getReceiverHosted(), attachedFd };
    case R.CapDescriptor_Which.RECEIVER_ANSWER:
      return { receiverAnswer: readPromisedAnswer(d.getReceiverAnswer()), attachedFd };
    default:
      return { which: d.which() };
  }
}

function readPayload(p: R.Payload): unknown {
  const c = p.getContent();
  const point = new E.Point(c.segment, c.byteOffset);
  return {
    content: p.hasContent() ? { x: point.getX(), y: point.getY() } : null,
    capTable: p.getCapTable().map(readCapDescriptor),
  };
}

function readContext(c: R.Disembargo_Context): unknown {
  switch (c.which()) {
    case R.Disembargo_Context_Which.SENDER_LOOPBACK:
      return { senderLoopback: c.getSenderLoopback() };
    case R.Disembargo_Context_Which.RECEIVER_LOOPBACK:
      return { receiverLoopback: c.getReceiverLoopback() };
    case R.Disembargo_Context_Which.ACCEPT:
      return { accept: null };
    default:
      return { provide: c.getProvide() };
  }
}

function readRpc(m: R.Message): unknown {
  const W = R.Message_Which;
  switch (m.which()) {
    case W.UNIMPLEMENTED:
      return { unimplemented: readRpc(m.getUnimplemented()) };
    case W.ABORT:
      return { abort: readException(m.getAbort()) };
    case W.BOOTSTRAP:
      return { bootstrap: { questionId: m.getBootstrap().getQuestionId() } };
    case W.CALL: {
      const c = m.getCall();
      return {
        call: {
          questionId: c.getQuestionId(),
          target: readTarget(c.getTarget()),
          interfaceId: c.getInterfaceId(),
          methodId: c.getMethodId(),
          allowThirdPartyTailCall: c.getAllowThirdPartyTailCall(),
          params: readPayload(c.getParams()),
          sendResultsTo: c.getSendResultsTo().which(),
        },
      };
    }
    case W.RETURN: {
      const r = m.getReturn();
      const base = { answerId: r.getAnswerId(), releaseParamCaps: r.getReleaseParamCaps() };
      switch (r.which()) {
        case R.Return_Which.RESULTS:
          return { return: { ...base, results: readPayload(r.getResults()) } };
        case R.Return_Which.EXCEPTION:
          return { return: { ...base, exception: readException(r.getException()) } };
        case R.Return_Which.CANCELED:
          return { return: { ...base, canceled: null } };
        default:
          return { return: { ...base, which: r.which() } };
      }
    }
    case W.FINISH: {
      const f = m.getFinish();
      return { finish: { questionId: f.getQuestionId(), releaseResultCaps: f.getReleaseResultCaps() } };
    }
    case W.RESOLVE: {
      const r = m.getResolve();
      return {
        resolve:
          r.which() === R.Resolve_Which.CAP
            ? { promiseId: r.getPromiseId(), cap: readCapDescriptor(r.getCap()) }
            : { promiseId: r.getPromiseId(), exception: readException(r.getException()) },
      };
    }
    case W.RELEASE: {
      const r = m.getRelease();
      return { release: { id: r.getId(), referenceCount: r.getReferenceCount() } };
    }
    case W.DISEMBARGO: {
      const d = m.getDisembargo();
      return { disembargo: { target: readTarget(d.getTarget()), context: readContext(d.getContext()) } };
    }
    default:
      return { which: m.which() };
  }
}

// ---- one builder per message kind ---------------------------------------------------------------

function buildPromisedAnswer(
  pa: R.PromisedAnswer,
  questionId: number,
  ops: ReadonlyArray<number | null>,
): void {
  pa.setQuestionId(questionId);
  const transform = pa.initTransform(ops.length);
  ops.forEach((op, i) => {
    if (op === null) transform.get(i).setNoop();
    else transform.get(i).setGetPointerField(op);
  });
}

function buildPayload(p: R.Payload): void {
  initPoint(p.getContent(), 1.5, -2);
  const caps = p.initCapTable(5);
  caps.get(0).setSenderHosted(3);
  caps.get(1).setSenderPromise(4);
  caps.get(2).setReceiverHosted(5);
  buildPromisedAnswer(caps.get(3).initReceiverAnswer(), 6, [1]);
  caps.get(3).setAttachedFd(2);
  caps.get(4).setNone();
}

const payload = {
  content: { x: 1.5, y: -2 },
  capTable: [
    { senderHosted: 3, attachedFd: 255 },
    { senderPromise: 4, attachedFd: 255 },
    { receiverHosted: 5, attachedFd: 255 },
    { receiverAnswer: { questionId: 6, transform: [{ getPointerField: 1 }] }, attachedFd: 2 },
    { none: null, attachedFd: 255 },
  ],
};

function buildException(e: R.Exception, reason: string, type: R.Exception_Type): void {
  e.setReason(reason);
  e.setType(type);
  e.setTrace("at somewhere");
}

interface Kind {
  readonly name: string;
  readonly build: Build;
  readonly expected: unknown;
}

const kinds: Kind[] = [
  {
    name: "bootstrap",
    build: (m) => m.initBootstrap().setQuestionId(0),
    expected: { bootstrap: { questionId: 0 } },
  },
  {
    name: "call with a params payload, a cap table and a promised-answer target with transform ops",
    build: (m) => {
      const c = m.initCall();
      c.setQuestionId(7);
      buildPromisedAnswer(c.initTarget().initPromisedAnswer(), 9, [null, 0, 3]);
      c.setInterfaceId(E.Counter.$interface.id);
      c.setMethodId(2);
      c.setAllowThirdPartyTailCall(true);
      buildPayload(c.initParams());
    },
    expected: {
      call: {
        questionId: 7,
        target: {
          promisedAnswer: {
            questionId: 9,
            transform: [{ noop: null }, { getPointerField: 0 }, { getPointerField: 3 }],
          },
        },
        interfaceId: 0xd6334cd8c3c55efbn,
        methodId: 2,
        allowThirdPartyTailCall: true,
        params: payload,
        sendResultsTo: R.Call_SendResultsTo_Which.CALLER,
      },
    },
  },
  {
    name: "call on an imported capability, sending results to yourself",
    build: (m) => {
      const c = m.initCall();
      c.setQuestionId(4294967295);
      c.initTarget().setImportedCap(12);
      c.setInterfaceId(2n ** 64n - 1n);
      c.setMethodId(65535);
      c.getSendResultsTo().setYourself();
      c.initParams();
    },
    expected: {
      call: {
        questionId: 4294967295,
        target: { importedCap: 12 },
        interfaceId: 2n ** 64n - 1n,
        methodId: 65535,
        allowThirdPartyTailCall: false,
        params: { content: null, capTable: [] },
        sendResultsTo: R.Call_SendResultsTo_Which.YOURSELF,
      },
    },
  },
  {
    name: "return with results",
    build: (m) => {
      const r = m.initReturn();
      r.setAnswerId(7);
      r.setReleaseParamCaps(false);
      buildPayload(r.initResults());
    },
    expected: { return: { answerId: 7, releaseParamCaps: false, results: payload } },
  },
  {
    name: "return with an exception",
    build: (m) => {
      const r = m.initReturn();
      r.setAnswerId(8);
      buildException(r.initException(), "no such method", R.Exception_Type.UNIMPLEMENTED);
    },
    expected: {
      return: {
        answerId: 8,
        releaseParamCaps: true,
        exception: { reason: "no such method", type: R.Exception_Type.UNIMPLEMENTED, trace: "at somewhere" },
      },
    },
  },
  {
    name: "return canceled",
    build: (m) => {
      const r = m.initReturn();
      r.setAnswerId(9);
      r.setCanceled();
    },
    expected: { return: { answerId: 9, releaseParamCaps: true, canceled: null } },
  },
  {
    name: "finish",
    build: (m) => {
      const f = m.initFinish();
      f.setQuestionId(7);
      f.setReleaseResultCaps(false);
    },
    expected: { finish: { questionId: 7, releaseResultCaps: false } },
  },
  {
    name: "finish keeping the default releaseResultCaps",
    build: (m) => m.initFinish().setQuestionId(1),
    expected: { finish: { questionId: 1, releaseResultCaps: true } },
  },
  {
    name: "resolve to a capability",
    build: (m) => {
      const r = m.initResolve();
      r.setPromiseId(3);
      r.initCap().setSenderHosted(9);
    },
    expected: { resolve: { promiseId: 3, cap: { senderHosted: 9, attachedFd: 255 } } },
  },
  {
    name: "resolve to an exception",
    build: (m) => {
      const r = m.initResolve();
      r.setPromiseId(4);
      buildException(r.initException(), "gone", R.Exception_Type.DISCONNECTED);
    },
    expected: {
      resolve: {
        promiseId: 4,
        exception: { reason: "gone", type: R.Exception_Type.DISCONNECTED, trace: "at somewhere" },
      },
    },
  },
  {
    name: "release",
    build: (m) => {
      const r = m.initRelease();
      r.setId(4);
      r.setReferenceCount(4294967295);
    },
    expected: { release: { id: 4, referenceCount: 4294967295 } },
  },
  {
    name: "disembargo with a senderLoopback context",
    build: (m) => {
      const d = m.initDisembargo();
      d.initTarget().setImportedCap(2);
      d.getContext().setSenderLoopback(5);
    },
    expected: { disembargo: { target: { importedCap: 2 }, context: { senderLoopback: 5 } } },
  },
  {
    name: "disembargo with a receiverLoopback context",
    build: (m) => {
      const d = m.initDisembargo();
      buildPromisedAnswer(d.initTarget().initPromisedAnswer(), 3, [0]);
      d.getContext().setReceiverLoopback(6);
    },
    expected: {
      disembargo: {
        target: { promisedAnswer: { questionId: 3, transform: [{ getPointerField: 0 }] } },
        context: { receiverLoopback: 6 },
      },
    },
  },
  {
    name: "disembargo with an accept context",
    build: (m) => {
      const d = m.initDisembargo();
      d.initTarget().setImportedCap(1);
      d.getContext().setAccept();
    },
    expected: { disembargo: { target: { importedCap: 1 }, context: { accept: null } } },
  },
  {
    name: "disembargo with a provide context",
    build: (m) => {
      const d = m.initDisembargo();
      d.initTarget().setImportedCap(1);
      d.getContext().setProvide(7);
    },
    expected: { disembargo: { target: { importedCap: 1 }, context: { provide: 7 } } },
  },
  {
    name: "abort",
    build: (m) => buildException(m.initAbort(), "protocol violation", R.Exception_Type.FAILED),
    expected: {
      abort: { reason: "protocol violation", type: R.Exception_Type.FAILED, trace: "at somewhere" },
    },
  },
  {
    name: "unimplemented echoing a resolve",
    build: (m) => {
      const r = m.initUnimplemented().initResolve();
      r.setPromiseId(11);
      r.initCap().setReceiverHosted(12);
    },
    expected: { unimplemented: { resolve: { promiseId: 11, cap: { receiverHosted: 12, attachedFd: 255 } } } },
  },
];

describe("rpc.capnp compiled by our plugin against capnp-ts's compiled rpc.capnp", () => {
  for (const k of kinds) {
    describe(k.name, () => {
      it("our classes build a message that capnp-ts's classes read field for field", () => {
        expect(readRpc(readWith(std.Message, serialize(R.Message, k.build)))).toEqual(k.expected);
      });

      it("capnp-ts's classes build a message that our classes read field for field", () => {
        expect(readRpc(readWith(R.Message, serialize(std.Message, k.build)))).toEqual(k.expected);
      });

      it("both write identical bytes when built the same way", () => {
        expect(Buffer.from(serialize(R.Message, k.build)).toString("hex")).toBe(
          Buffer.from(serialize(std.Message, k.build)).toString("hex"),
        );
      });
    });
  }

  it("every message kind answers the same which() and struct ids", () => {
    expect(R.Message_Which).toMatchObject({
      UNIMPLEMENTED: std.Message_Which.UNIMPLEMENTED,
      ABORT: std.Message_Which.ABORT,
      BOOTSTRAP: std.Message_Which.BOOTSTRAP,
      CALL: std.Message_Which.CALL,
      RETURN: std.Message_Which.RETURN,
      FINISH: std.Message_Which.FINISH,
      RESOLVE: std.Message_Which.RESOLVE,
      RELEASE: std.Message_Which.RELEASE,
      DISEMBARGO: std.Message_Which.DISEMBARGO,
    });
    for (const [ours, theirs] of [
      [R.Message, std.Message],
      [R.Call, std.Call],
      [R.Return, std.Return],
      [R.Payload, std.Payload],
      [R.CapDescriptor, std.CapDescriptor],
      [R.Exception, std.Exception],
    ] as const) {
      expect(ours._capnp.id).toBe(theirs._capnp.id);
      expect(ours._capnp.size).toEqual(theirs._capnp.size);
    }
  });
});
