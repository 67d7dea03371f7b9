/**
 * Capabilities inside messages.
 *
 * A capability pointer holds an index into its message's cap table (`message._capnp.capTable`).
 * Parallax keeps `CapHook`s there. A message owns one reference on each hook in its table: whoever
 * discards the message calls `releaseCapTable`. Reading a capability out of a message adds a
 * reference for the reader; writing one in adds a reference for the message.
 *
 * A leaf of caps: it knows hooks, never how a value becomes one (`capHookOf`, in
 * local-capability.ts). The cap table is the one capnp-ts internal used outside
 * src/wire/capnp-internals.ts (caps sits below wire).
 *
 * Tests: test/caps/cap-table.test.ts; test/caps/local-capability.test.ts and test/rpc/ through it.
 */
import { Interface, type Message, type Pointer, Struct } from "capnp-ts";
import { nullCapError } from "../errors.js";
import { BrokenCapHook } from "./broken-cap.js";
import type { CapHook } from "./cap-hook.js";
import type { Capability, CapabilityCtor } from "./capability.js";

/** The pointer word of a capability: kind "other" (3) in the low 32 bits, the cap index above. */
const CAPABILITY_POINTER_TAG = 3;

type CapTableMessage = { _capnp: { capTable?: Array<unknown> } };

export function capTableOf(message: Message): Array<CapHook | null> {
  const m = message as unknown as CapTableMessage;
  if (m._capnp.capTable === undefined) m._capnp.capTable = [];
  return m._capnp.capTable as Array<CapHook | null>;
}

/** Releases the message's reference on every capability in its table and empties it. */
export function releaseCapTable(message: Message): void {
  const table = (message as unknown as CapTableMessage)._capnp.capTable as Array<CapHook | null> | undefined;
  if (table === undefined) return;
  // Emptied in place: a results registry holding this same array then has nothing left to release.
  for (const hook of table.splice(0)) hook?.release();
}

/**
 * Releases the capabilities of results messages that nobody references any more (neither a
 * pipeline nor any struct read from them); `releaseResults` does it at once instead.
 */
const heldResults = new FinalizationRegistry<Array<CapHook | null>>((hooks) => {
  for (const hook of hooks.splice(0)) hook?.release();
});

/** Keeps a results message's capabilities until the message is collected or `releaseResults`. */
export function holdResults(message: Message): void {
  const table = capTableOf(message);
  if (table.length > 0) heldResults.register(message, table, message);
}

export function releaseResults(message: Message): void {
  heldResults.unregister(message);
  releaseCapTable(message);
}

/** The hook a capability pointer designates, without adding a reference; null for a null pointer. */
export function hookAt(p: Pointer): CapHook | null {
  const capId = Interface.getCapId(p);
  if (capId < 0) return null;
  const table = (p.segment.message as unknown as CapTableMessage)._capnp.capTable;
  return (table?.[capId] as CapHook | null | undefined) ?? null;
}

/** Reads a capability field into a new stub that owns its own reference. */
export function readCap<C extends Capability>(p: Pointer, Ctor: CapabilityCtor<C>): C {
  const hook = hookAt(p);
  return new Ctor(hook === null ? new BrokenCapHook(nullCapError()) : hook.addRef());
}

/** Writes `hook` into a pointer slot; the message takes over the caller's reference on it. */
export function putCapHook(p: Pointer, hook: CapHook): void {
  const capId = capTableOf(p.segment.message).push(hook) - 1;
  p.segment.setUint32(p.byteOffset, CAPABILITY_POINTER_TAG);
  p.segment.setUint32(p.byteOffset + 4, capId);
}

/** Writes a null pointer into a slot (a capability field set to null). */
export function putNullCap(p: Pointer): void {
  p.segment.setUint32(p.byteOffset, 0);
  p.segment.setUint32(p.byteOffset + 4, 0);
}

/**
 * The capability found by following pointer indexes `ops` from `root` (the PromisedAnswer
 * transform of the RPC spec), without adding a reference. Null when the path leads nowhere.
 */
export function capAtPath(root: Struct, ops: readonly number[]): CapHook | null {
  if (ops.length === 0) return null;
  let s: Struct = root;
  try {
    for (let k = 0; k < ops.length - 1; k++) {
      s = Struct.getPointerAs(ops[k] as number, Struct, s);
    }
    return hookAt(Struct.getPointer(ops[ops.length - 1] as number, s));
  } catch {
    return null;
  }
}
