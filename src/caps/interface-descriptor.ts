/**
 * Descriptions of schema interfaces, emitted by the compiler plugin for every interface.
 *
 * The engine dispatches on `(interfaceId, methodId)` only; `name` is the property on the server
 * object that implements the method. A method is callable remotely exactly when it appears in a
 * descriptor: this is the one greppable rule for what is remotely callable (`$interface`).
 *
 * Tests: test/codegen/interfaces.test.ts (descriptors), test/caps/local-capability.test.ts ("failures").
 */
import type { Struct, StructCtor } from "capnp-ts";

export interface MethodDescriptor<P extends Struct = Struct, R extends Struct = Struct> {
  readonly interfaceId: bigint;
  readonly interfaceName: string;
  readonly methodId: number;
  /** The method's name in the schema, and the server object's property that implements it. */
  readonly name: string;
  readonly Params: StructCtor<P>;
  readonly Results: StructCtor<R>;
}

export interface InterfaceDescriptor {
  readonly id: bigint;
  readonly name: string;
  /** Methods declared by this interface itself, indexed by method id. */
  readonly methods: readonly MethodDescriptor[];
  /** Interfaces this one extends (directly). */
  readonly superclasses: readonly InterfaceDescriptor[];
}

/** Finds the method `(interfaceId, methodId)` among `iface` and everything it extends. */
export function findMethod(
  iface: InterfaceDescriptor,
  interfaceId: bigint,
  methodId: number,
): MethodDescriptor | undefined {
  if (iface.id === interfaceId) return iface.methods[methodId];
  for (const sup of iface.superclasses) {
    const m = findMethod(sup, interfaceId, methodId);
    if (m !== undefined) return m;
  }
  return undefined;
}

/** True when `iface` is `ancestorId` or extends it. */
export function extendsInterface(iface: InterfaceDescriptor, ancestorId: bigint): boolean {
  return iface.id === ancestorId || iface.superclasses.some((s) => extendsInterface(s, ancestorId));
}
