/**
 * Parallax's public API. Demos and applications import from here and nothing deeper.
 */
export * from "./caps/index.js";
export { connect, type ConnectOptions } from "./client.js";
export { type ErrorKind, ErrorCode, ParallaxError } from "./errors.js";
export { DEFAULT_LIMITS, type Limits, resolveLimits } from "./limits.js";
export {
  type ConnectionStats,
  connectionOf,
  onDisconnect,
  RpcConnection,
  type RpcConnectionOptions,
} from "./rpc/index.js";
export { type ParallaxServer, type ServerOptions, startServer } from "./server.js";
export { CounterServer, DemoServer, demoBootstrap } from "./services/demo/demo-service.js";
export * from "./transport/index.js";
export * as demoSchema from "./wire/gen/demo.js";
