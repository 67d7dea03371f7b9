/**
 * The capability runtime: what generated code and the RPC layer build on.
 *
 * Tests: test/caps/.
 */
export { BrokenCapHook, brokenResult } from "./broken-cap.js";
export type { CallOptions, CapHook, ParamsFiller, ResultHook } from "./cap-hook.js";
export { nullCapError } from "../errors.js";
export {
  capAtPath,
  capTableOf,
  holdResults,
  hookAt,
  putCapHook,
  readCap,
  releaseCapTable,
  releaseResults,
} from "./cap-table.js";
export type { CallContext, CallOrigin, CallScope } from "./call-context.js";
export {
  brokenCapability,
  Capability,
  type CapabilityCtor,
  type ParamsInit,
  type ShapeSettable,
} from "./capability.js";
export {
  extendsInterface,
  findMethod,
  type InterfaceDescriptor,
  type MethodDescriptor,
} from "./interface-descriptor.js";
export {
  capHookOf,
  LocalCallContext,
  LocalCapHook,
  localCapHook,
  localServerOf,
  writeCap,
} from "./local-capability.js";
export { PromiseCapHook } from "./promise-cap.js";
export { GuardedScope, primaryScope, ScopedCapHook, scoped, unwrapScope, withGuards } from "./scoped-cap.js";
export { type PipelineCtor, StructPipeline } from "./struct-pipeline.js";
