/**
 * A message's cap table (src/caps/cap-table.ts): capability pointers index it, the message owns
 * one reference on each hook in it, readers take their own.
 */
import { Message, Struct } from "capnp-ts";
import { describe, expect, it } from "vitest";
import {
  BrokenCapHook,
  type CapHook,
  capAtPath,
  capTableOf,
  hookAt,
  putCapHook,
  readCap,
  releaseCapTable,
} from "../../src/caps/index.js";
import { ErrorCode, nullCapError } from "../../src/errors.js";
import * as E from "../gen/everything.js";
import { rejection } from "../helpers/errors.js";

/** A hook that only counts its references. */
class CountingHook extends BrokenCapHook {
  refs = 1;
  constructor() {
    super(nullCapError());
  }
  override addRef(): CapHook {
    this.refs++;
    return this;
  }
  override release(): void {
    this.refs--;
  }
}

function results(): E.Counter_child_Results {
  return new Message().initRoot(E.Counter_child_Results);
}

describe("a message's cap table", () => {
  it("holds the hook putCapHook writes, at the index its capability pointer names", () => {
    const r = results();
    const hook = new CountingHook();
    putCapHook(Struct.getPointer(0, r), hook);
    expect(capTableOf(r.segment.message)).toEqual([hook]);
    expect(hookAt(Struct.getPointer(0, r))).toBe(hook);
    expect(hook.refs).toBe(1); // the caller's reference went to the message
    expect(hookAt(Struct.getPointer(1, r))).toBeNull();
  });

  it("gives each reader its own reference, and releases the message's own when it is dropped", () => {
    const r = results();
    const hook = new CountingHook();
    putCapHook(Struct.getPointer(0, r), hook);
    const stub = readCap(Struct.getPointer(0, r), E.Counter);
    expect(hook.refs).toBe(2);
    releaseCapTable(r.segment.message);
    expect(hook.refs).toBe(1);
    expect(capTableOf(r.segment.message)).toEqual([]);
    stub.dispose();
    expect(hook.refs).toBe(0);
  });

  it("reads a null capability pointer as a stub that fails every call with the null-capability error", async () => {
    const r = results();
    r.counter = null;
    using stub = r.counter;
    const err = await rejection(stub.get());
    expect(err).toMatchObject({ code: ErrorCode.FAILED, message: nullCapError().message });
  });

  it("follows a pipelined path to a capability, and finds none where the path leads nowhere", () => {
    const r = results();
    const hook = new CountingHook();
    putCapHook(Struct.getPointer(0, r), hook);
    r.info = { value: 7 };
    expect(capAtPath(r, [0])).toBe(hook);
    expect(capAtPath(r, [1])).toBeNull(); // a struct, not a capability
    expect(capAtPath(r, [1, 0])).toBeNull(); // into a struct with no such pointer
    expect(capAtPath(r, [0, 0])).toBeNull(); // through a capability, as if it were a struct
    expect(capAtPath(r, [])).toBeNull();
    expect(hook.refs).toBe(1); // looking adds no reference
  });
});
