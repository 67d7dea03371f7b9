/**
 * The RPC engine: one RpcConnection per transport.
 *
 * Tests: test/rpc/.
 */
export {
  type ConnectionStats,
  connectionOf,
  onDisconnect,
  RpcConnection,
  type RpcConnectionOptions,
} from "./rpc-connection.js";
