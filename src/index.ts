/**
 * Parallax's public API for Node. Demos and applications import from here and nothing deeper;
 * browsers import `browser.ts`, which this re-exports.
 */
export * from "./browser.js";
export { connect, type ConnectOptions } from "./client.js";
export { type ParallaxServer, type ServerOptions, startServer } from "./server.js";
export { CounterServer, DemoServer, demoBootstrap } from "./services/demo/demo-service.js";
export * from "./transport/index.js";
