/** The RPC engine: one RpcConnection per transport. */
export {
  type ConnectionStats,
  connectionOf,
  onDisconnect,
  RpcConnection,
  type RpcConnectionOptions,
} from "./rpc-connection.js";
