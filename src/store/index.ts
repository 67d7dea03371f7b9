/**
 * The store: the `BrokerStore` contract, the service store contracts (`WalletStore`, reached by
 * the `WALLET_STORE` token) and their embedded SQLite implementation.
 *
 * Tests: test/store/
 */
export type {
  Actor,
  ApiKeyRecord,
  AuditEntry,
  AuditKind,
  AuditRecord,
  BrokerStore,
  Decision,
  IdentityRecord,
  KdfParams,
  KeyringPair,
  PendingKind,
  PendingRecord,
  PublicKeyRecord,
  PurgeCounts,
  ResumeRotation,
  ResumeTokenRecord,
  StoredVerifier,
  WriteContext,
} from "./broker-store.js";
export { LATEST_VERSION, type Migration, MIGRATIONS } from "./migrations.js";
export { nameKey, sameName } from "./name-key.js";
export {
  BUSY_TIMEOUT_MS,
  MAX_WALLET_BYTES,
  MAX_WALLET_HMAC_BYTES,
  SqliteBrokerStore,
  type SqliteStoreOptions,
  type StoreSettings,
} from "./sqlite-store.js";
export {
  type AccountKind,
  BANK_STORE,
  type BankAccountRecord,
  type BankActor,
  type BankStore,
  type EmploymentRecord,
  type HoldRecord,
  type JournalRecord,
  type LimitKind,
  type OrganizationRecord,
  type PaymentPolicy,
  type PaymentRequestRecord,
  type Permissions,
  type Receipt,
  type RoleRecord,
  type StatementRecord,
  type TransferField,
  type TransferInput,
  type TransferKind,
  type TransferResult,
} from "./bank-store.js";
export {
  CHAT_STORE,
  type ChatActor,
  type ChatHistoryQuery,
  type ChatInboxRecord,
  type ChatInvitationRecord,
  type ChatJoinResult,
  type ChatMemberRecord,
  type ChatMembershipActor,
  type ChatMembershipChange,
  type ChatMessageKind,
  type ChatMessageRecord,
  type ChatRoomKind,
  type ChatRoomRecord,
  type ChatRoomView,
  type ChatStore,
} from "./chat-store.js";
export {
  GO_STORE,
  type GoActor,
  type GoChallengeRecord,
  type GoColor,
  type GoGameInit,
  type GoGameRecord,
  type GoMoveInput,
  type GoMoveRow,
  type GoPhase,
  type GoRatingRecord,
  type GoStore,
  type GoWriteResult,
} from "./go-store.js";
export {
  absentMetadata,
  MAX_METADATA_KEY_CHARS,
  type MetadataDeleteResult,
  type MetadataLimits,
  type MetadataPrecondition,
  type MetadataRecord,
  type MetadataSetResult,
  ROLE_NAME,
  ROUTER_STORE,
  type RouterStore,
} from "./router-store.js";
export { type StoreContract, storeContract } from "./store-contract.js";
export {
  type PasswordChangeResult,
  WALLET_STORE,
  type WalletInput,
  type WalletRecord,
  type WalletStore,
  type WalletUpdateResult,
} from "./wallet-store.js";
