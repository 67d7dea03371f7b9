/**
 * A typed token naming one service's store contract (`WALLET_STORE`, later `BANK_STORE`, …).
 *
 * A service asks the store for the contract it needs with `store.repository(TOKEN)` and gets an
 * object of that type, or `undefined` if this store does not implement it (the service then
 * refuses to start with a clear error), instead of duck-typing the store for one of its methods.
 *
 * Invariants: tokens are compared by identity, not by name, so each contract has exactly one
 * token (the one its contract file exports); the name is for error messages only. The type
 * parameter exists only for the compiler.
 *
 * Tests: test/store/repository.test.ts
 */

declare const contractType: unique symbol;

export interface StoreContract<T> {
  /** For messages ("this store has no wallet repository"); not a key. */
  readonly name: string;
  /** Never set: carries `T` so that `repository(token)` is typed. */
  readonly [contractType]?: T;
}

/** Makes the one token of a store contract; call once, in the file that declares the contract. */
export function storeContract<T>(name: string): StoreContract<T> {
  return Object.freeze({ name });
}
