/** Scoped capabilities (src/caps/scoped-cap.ts): marks and guards a capability carries to the RPC layer. */
import { describe, expect, it } from "vitest";
import {
  type CallScope,
  GuardedScope,
  primaryScope,
  ScopedCapHook,
  scoped,
  unwrapScope,
  withGuards,
} from "../../src/caps/index.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import * as E from "../gen/everything.js";

/** A scope that counts what it admits and can be revoked. */
function countingScope(): CallScope & { calls: number; exports: number; revoked: boolean } {
  const s = {
    calls: 0,
    exports: 0,
    revoked: false,
    check() {
      if (s.revoked) throw new ParallaxError(ErrorCode.REVOKED, "revoked");
    },
    enterCall() {
      s.check();
      s.calls++;
    },
    leaveCall() {
      s.calls--;
    },
    enterExport() {
      s.check();
      s.exports++;
    },
    leaveExport() {
      s.exports--;
    },
  };
  return s;
}

function counterImpl(): E.Counter$Server {
  let value = 0n;
  return {
    inc: (p) => {
      value += BigInt(p.by);
      return { value };
    },
    get: () => ({ value }),
    child: () => ({}),
  };
}

function counter(): E.Counter {
  return E.Counter.server(counterImpl());
}

describe("a scoped capability", () => {
  it("called locally, is its inner capability", async () => {
    const scope = countingScope();
    using c = scoped(counter(), scope);
    expect((await c.inc({ by: 3 })).value).toBe(3n);
    expect(scope.calls).toBe(0); // scopes are the RPC layer's to count
  });

  it("unwraps to its outermost mark and every distinct guard, over the inner hook", () => {
    const mark = countingScope();
    const guard = countingScope();
    using inner = counter();
    const hook = new ScopedCapHook(
      new ScopedCapHook(new ScopedCapHook(inner.$hook.addRef(), guard, true), mark),
      guard,
      true,
    );
    const { hook: under, scope, guards } = unwrapScope(hook);
    expect(under).toBe(inner.$hook);
    expect(scope).toBe(mark);
    expect(guards).toEqual([guard]);
    hook.release();
    expect(unwrapScope(inner.$hook)).toEqual({ hook: inner.$hook, scope: undefined, guards: [] });
  });

  it("drops its reference on the inner capability with its own last reference", () => {
    let disposed = 0;
    const impl = Object.assign(counterImpl(), { [Symbol.dispose]: () => void disposed++ });
    const inner = E.Counter.server(impl);
    const hook = new ScopedCapHook(inner.$hook.addRef(), countingScope());
    inner.dispose();
    hook.addRef();
    hook.release();
    expect(disposed).toBe(0);
    hook.release();
    expect(disposed).toBe(1);
  });
});

describe("guards", () => {
  it("a guarded scope counts calls and exports on its primary and only checks its guards", () => {
    const primary = countingScope();
    const guard = countingScope();
    const s = withGuards(primary, [guard]) as GuardedScope;
    expect(s).toBeInstanceOf(GuardedScope);
    expect(primaryScope(s)).toBe(primary);
    s.enterCall();
    s.enterExport();
    expect([primary.calls, primary.exports, guard.calls, guard.exports]).toEqual([1, 1, 0, 0]);
    s.leaveCall();
    s.leaveExport();
    guard.revoked = true;
    expect(() => s.enterCall()).toThrow(expect.objectContaining({ code: ErrorCode.REVOKED }));
    expect(() => s.check()).toThrow(expect.objectContaining({ code: ErrorCode.REVOKED }));
    expect(primary.calls).toBe(0);
  });

  it("adds nothing when there are no guards, or only the scope itself", () => {
    const scope = countingScope();
    expect(withGuards(scope, [])).toBe(scope);
    expect(withGuards(scope, [scope])).toBe(scope);
    expect(primaryScope(scope)).toBe(scope);
  });
});
