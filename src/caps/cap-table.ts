/**
 * Capabilities inside messages.
 *
 * A capability pointer holds an index into its message's cap table (`message._capnp.capTable`).
 * Parallax keeps `CapHook`s there. A message owns one reference on each hook in its table: whoever
 * discards the message calls `releaseCapTable`. Reading a capability out of a message adds a
 * reference for the reader; writing one in adds a reference for the message.
 */
import { Interface, type Message, type Pointer, Struct } from "capnp-ts";
import { ErrorCode, ParallaxError } from "../errors.js";
import { BrokenCapHook } from "./broken-cap.js";
import type { CapHook } from "./cap-hook.js";
import { Capability, type CapabilityCtor } from "./capability.js";
import type { InterfaceDescriptor } from "./interface-descriptor.js";
import { localCapHook } from "./local-capability.js";

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

/**
 * Writes a capability into a pointer slot. `value` is a stub (its hook gains a reference held by
 * the message) or a server object implementing `iface` (it becomes a local capability).
 */
export function writeCap(p: Pointer, value: Capability | object | null, iface?: InterfaceDescriptor): void {
  if (value === null) {
    p.segment.setUint32(p.byteOffset, 0);
    p.segment.setUint32(p.byteOffset + 4, 0);
    return;
  }
  let hook: CapHook;
  if (value instanceof Capability) hook = value.$hook.addRef();
  else if (iface !== undefined) hook = localCapHook(iface, value);
  else {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      "an untyped capability field needs a Capability stub, not a plain object",
    );
  }
  const table = capTableOf(p.segment.message);
  const capId = table.push(hook) - 1;
  p.segment.setUint32(p.byteOffset, CAPABILITY_POINTER_TAG);
  p.segment.setUint32(p.byteOffset + 4, capId);
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

export function nullCapError(): ParallaxError {
  return new ParallaxError(ErrorCode.FAILED, "called a null capability");
}
