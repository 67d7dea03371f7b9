/**
 * Parallax's public API for Node. Demos and applications import from here and nothing deeper;
 * browsers import `browser.ts`, which this re-exports. A chosen list: capability hooks, the four
 * tables and the login layer's grants stay private.
 *
 * Tests: test/architecture.test.ts (demos import only this), test/demos/
 */
export * from "./browser.js";
export { connect, type ConnectOptions } from "./client.js";
export { Argon2Kdf } from "./cred/argon2-kdf.js";
export type { SignUpMode } from "./cred/authorizer.js";
export { generateEd25519 } from "./cred/ed25519.js";
export { KDF_DEFAULT, KDF_FLOOR } from "./cred/kdf.js";
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
export type { Ed25519Signer } from "./login/browser-login.js";
export {
  ADMIN_PAIR,
  type AuthMethodName,
  actorOf,
  auditEntry,
  Broker,
  type BrokerOptions,
  callerIdentity,
  callerPerspective,
  capabilityKey,
  type DetachKind,
  type DetachReason,
  type EventBus,
  type Grant,
  grantOf,
  type IdentityView,
  InProcessBus,
  type Kdf,
  memoizeKdf,
  Notifier,
  type NotifierOptions,
  onKeyring,
  Perspective,
  PerUserService,
  readVerifier,
  type Service,
  type ServiceContext,
  type ServiceHost,
  type ServiceModule,
  serviceModule,
  type Topic,
  topic,
  UserPerspective,
  type ViewableServer,
  viewable,
} from "./login/index.js";
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
  DEFAULT_SERVICES,
  type ParallaxServer,
  type ServerOptions,
  startBroker,
  startServer,
} from "./server.js";
export {
  BankClient,
  type BankClientOptions,
  newTransferId,
  type PaymentOrder,
  type PaymentResult,
} from "./services/bank/bank-client.js";
export { BANK_BANKER, BANK_CUSTOMER, BANK_EMPLOYEE } from "./services/bank/bank-keys.js";
export {
  BANK_CHANGED,
  BANK_DECIDED,
  BANK_GRANT,
  type BankOptions,
  BankService,
  bank,
} from "./services/bank/bank-service.js";
export { CounterServer, DemoServer, demoBootstrap } from "./services/demo/demo-service.js";
export {
  LOBBY_SAID,
  type LobbyOptions,
  LobbyService,
  lobby,
  MemberPerspective,
} from "./services/lobby/lobby-service.js";
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
export {
  WALLET_UPDATED,
  type WalletOwnerPerspective,
  WalletService,
  type WalletServiceOptions,
  type WalletUpdated,
  wallet,
} from "./services/wallet/wallet-service.js";
export {
  type AccountKind,
  BANK_STORE,
  type BankAccountRecord,
  type BankActor,
  type BankStore,
  type EmploymentRecord,
  type JournalRecord,
  type OrganizationRecord,
  type Permissions,
  type Receipt,
  type RoleRecord,
  type StatementRecord,
  type TransferResult,
} from "./store/index.js";
export { GO_STORE, type GoGameRecord, type GoRatingRecord, type GoStore } from "./store/index.js";
export {
  type BrokerStore,
  type KeyringPair,
  nameKey,
  SqliteBrokerStore,
  type StoreContract,
  storeContract,
  WALLET_STORE,
  type WalletStore,
} from "./store/index.js";
export * as bankSchema from "./wire/gen/bank.js";
export type { EngineConfig } from "./services/go/engine-seat.js";
export {
  defaultEngines,
  engineUserName,
  type GoOptions,
  GoService,
  go,
} from "./services/go/go-service.js";
export {
  type GtpBridge,
  type GtpBridgeOptions,
  runGtpBridge,
} from "./services/go/gtp-bridge.js";
export {
  findGnuGo,
  GtpEngine,
  type GtpEngineOptions,
  type GtpMoveChoice,
} from "./services/go/gtp-engine.js";
export { GtpPlayer, type GtpHistory, type GtpMove, type GtpPlayerOptions } from "./services/go/gtp-player.js";
export {
  attachWebSocketServer,
  type CloseInfo,
  CloseCode,
  connectTcp,
  connectWebSocket,
  listenTcp,
  memoryPair,
  type TcpListener,
  type Transport,
  type WebSocketListener,
} from "./transport/index.js";
// Chat (seed 004's chat, issue 12).
export { ChatClient, type ChatClientOptions } from "./services/chat/chat-client.js";
export { CHAT_MEMBER } from "./services/chat/chat-keys.js";
export { type ChatOptions, ChatService, chat } from "./services/chat/chat-service.js";
export { CHAT_STORE, type ChatStore } from "./store/index.js";
export * as chatSchema from "./wire/gen/chat.js";
// The router (seed 003's WAMP-style extras, issue 12).
export {
  type CallResult,
  type Invocation as RouterInvocation,
  RouterClient,
  type RouterClientOptions,
  type RouterEvent,
  RouterResult,
} from "./services/router/router-client.js";
export { ROUTER_SESSION } from "./services/router/router-keys.js";
export { type RouterOptions, RouterService, router } from "./services/router/router-service.js";
export { DEFAULT_ROLES, type RoleConfig, readRoleConfig } from "./services/router/roles.js";
export { ROUTER_STORE, type RouterStore } from "./store/index.js";
export * as routerSchema from "./wire/gen/router.js";
