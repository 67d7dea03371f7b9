/**
 * Parallax's public API for Node. Demos and applications import from here and nothing deeper;
 * browsers import `browser.ts`, which this re-exports.
 */
export * from "./browser.js";
export { connect, type ConnectOptions } from "./client.js";
export { Argon2Kdf } from "./cred/argon2-kdf.js";
export type { SignUpMode } from "./cred/authorizer.js";
export { generateEd25519 } from "./cred/ed25519.js";
export { KDF_DEFAULT, KDF_FLOOR, type Kdf } from "./cred/kdf.js";
export { WasmKdf } from "./cred/wasm-kdf.js";
export {
  loginWithKey,
  loginWithPassword,
  makeVerifier,
  nodeKdf,
  type PasswordLogin,
  type SignUpResult,
  signUp,
} from "./login/client-login.js";
export * from "./login/index.js";
export {
  AttachedPerspective,
  type ReconnectEvent,
  ReconnectingClient,
  type ReconnectingClientOptions,
} from "./login/reconnecting-client.js";
export {
  type BrokerServer,
  type BrokerServerOptions,
  DEFAULT_KEYRING,
  type ParallaxServer,
  type ServerOptions,
  startBroker,
  startServer,
} from "./server.js";
export { CounterServer, DemoServer, demoBootstrap } from "./services/demo/demo-service.js";
export { LobbyService, MemberPerspective } from "./services/lobby/lobby-service.js";
export type { BrokerStore, KeyringPair } from "./store/index.js";
export { SqliteBrokerStore } from "./store/index.js";
export * from "./transport/index.js";
export * as walletSchema from "./wire/gen/wallet.js";
export {
  type ChangePasswordResult,
  formatWalletState,
  type GetRemoteResult,
  LOCAL_CHANGES,
  OUT_OF_DATE,
  type UpdateRemoteResult,
  WalletClient,
  type WalletClientOptions,
  type WalletEvent,
  type WalletKdf,
  type WalletListener,
  type WalletStateView,
} from "./services/wallet/wallet-client.js";
export {
  decryptWallet,
  deriveWalletKeys,
  encryptWallet,
  verifyWalletHmac,
  type WalletKeys,
  walletHmac,
} from "./services/wallet/wallet-crypto.js";
export {
  type ConflictResolver,
  decodeWallet,
  encodeWallet,
  localWins,
  type MergeResult,
  mergeWallets,
  remoteWins,
  type Wallet,
} from "./services/wallet/wallet-merge.js";
