/**
 * Parallax for browsers: what a client needs, and nothing that imports Node (the dependency test
 * holds it to that, and a test bundles it for the browser platform). A chosen list: the hooks,
 * tables and grants underneath stay private, as capnweb keeps its StubHook out of its index.
 * Logging in here is SCRAM on WebCrypto with argon2id in WebAssembly (`WasmKdf`, the default),
 * Ed25519 key logins with WebCrypto keys, and the ReconnectingClient, which keeps a resume token
 * (never the password) to come back after a dropped connection. src/index.ts re-exports all of
 * this and overrides the login functions with their Node faces (native argon2 by default).
 *
 * Tests: test/browser.test.ts
 */
import type { Limits } from "./limits.js";
import { RpcConnection } from "./rpc/index.js";
import { connectBrowserWebSocket } from "./transport/browser-websocket.js";

export type { CallContext, CallOptions, InterfaceDescriptor, MethodDescriptor } from "./caps/index.js";
export { brokenCapability, Capability, type CapabilityCtor, StructPipeline } from "./caps/index.js";
export { type Clock, ManualClock, systemClock, type Timer } from "./clock.js";
export { KDF_CEILING, KDF_DEFAULT, KDF_FLOOR, type Kdf, type KdfParams, memoizeKdf } from "./cred/kdf.js";
export {
  generateWebEd25519,
  type WebCryptoKey,
  type WebEd25519KeyPair,
  webEd25519Available,
} from "./cred/scram-client.js";
export { WasmKdf } from "./cred/wasm-kdf.js";
export { ErrorCode, type ErrorKind, ParallaxError } from "./errors.js";
export { DEFAULT_LIMITS, type Limits, resolveLimits } from "./limits.js";
export {
  browserKdf,
  type Ed25519Signer,
  loginWithKey,
  loginWithPassword,
  makeVerifier,
  type PasswordLogin,
  type SignUpResult,
  signUp,
} from "./login/browser-login.js";
export { attach, BROKER_ADMIN, type PerspectiveKey, perspectiveKey } from "./login/perspective-key.js";
export {
  AttachedPerspective,
  type ReconnectEvent,
  ReconnectingClient,
  type ReconnectingClientOptions,
} from "./login/reconnecting-client.js";
export {
  type ConnectionStats,
  connectionOf,
  onDisconnect,
  RpcConnection,
  type RpcConnectionOptions,
} from "./rpc/index.js";
export * from "./services/go/index.js";
export { GO_PLAYER } from "./services/go/go-keys.js";
export {
  type ClockOutcome,
  type ClockSnapshot,
  type ClockState,
  GameClock,
  type PlayerClockState,
  TIME_CONTROL_LIMITS,
  type TimeControl,
  timeControlFromSgf,
  timeControlToSgf,
  validateTimeControl,
} from "./services/go/game-clock.js";
export {
  GLICKO2_DEFAULTS,
  GLICKO2_UNRATED,
  type Glicko2Game,
  type Glicko2Options,
  type Glicko2Rating,
  glicko2ExpectedScore,
  glicko2Game,
  glicko2Idle,
  glicko2Update,
} from "./services/go/glicko2.js";
export { LOBBY_MEMBER } from "./services/lobby/lobby-keys.js";
export { WALLET_OWNER } from "./services/wallet/wallet-keys.js";
export { connectBrowserWebSocket } from "./transport/browser-websocket.js";
export * as brokerSchema from "./wire/gen/broker.js";
export * as demoSchema from "./wire/gen/demo.js";
export * as goSchema from "./wire/gen/go.js";
export * as lobbySchema from "./wire/gen/lobby.js";
export * as walletSchema from "./wire/gen/wallet.js";

/** Connects to a broker's `ws://…/rpc` (or `wss://`) endpoint with the browser's WebSocket. */
export async function connectBrowser(
  url: string,
  options: { limits?: Partial<Limits> } = {},
): Promise<RpcConnection> {
  return new RpcConnection(await connectBrowserWebSocket(url, options.limits), { limits: options.limits });
}
