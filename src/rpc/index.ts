/** The RPC engine: one RpcConnection per transport. */
export { type ConnectionStats, RpcConnection, type RpcConnectionOptions } from "./rpc-connection.js";
