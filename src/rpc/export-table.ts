/**
 * Capabilities we host that the peer holds.
 *
 * Invariant: an entry exists exactly while the peer holds at least one reference (`refs` counts
 * the times we sent it, less what the peer released). The table holds one reference on each
 * entry's hook, dropped when the entry goes. The same hook exported twice under the same scope
 * reuses its id; under another scope it gets another entry, so each scope sees its own calls.
 * An entry with a scope is counted by it (`enterExport`/`leaveExport`) while it exists.
 *
 * Tests: test/rpc/rpc-connection.test.ts ("reuses one export id"), test/rpc/hostile.test.ts (maxExports).
 */
import type { CallScope, CapHook } from "../caps/index.js";
import { ErrorCode, ParallaxError } from "../errors.js";
import { type ExportId, newExportId } from "../wire/rpc-ids.js";
import { IdAllocator } from "./id-allocator.js";

export interface ExportEntry {
  readonly id: ExportId;
  readonly hook: CapHook;
  refs: number;
  /** True while the hook is an unresolved promise (sent as senderPromise). */
  promise: boolean;
  /**
   * The scope the capability was handed out under (the login layer's grant). Calls through the
   * entry run under it, and capabilities in their results inherit it.
   */
  readonly scope: CallScope | undefined;
}

export class ExportTable {
  readonly #entries = new Map<ExportId, ExportEntry>();
  readonly #byHook = new Map<CapHook, ExportEntry>();
  /** Entries of hooks exported under a scope other than their first entry's. */
  readonly #byScope = new Map<CallScope | undefined, Map<CapHook, ExportEntry>>();
  readonly #ids = new IdAllocator();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.#entries.size;
  }

  get(id: ExportId): ExportEntry | undefined {
    return this.#entries.get(id);
  }

  /**
   * Adds one peer reference to `hook`'s entry under `scope`, creating it (and taking a hook
   * reference) if there is none; `created` says which.
   */
  export(
    hook: CapHook,
    promise: boolean,
    scope: CallScope | undefined,
  ): { entry: ExportEntry; created: boolean } {
    let existing = this.#byHook.get(hook);
    if (existing?.scope !== scope) existing = this.#byScope.get(scope)?.get(hook);
    if (existing !== undefined) {
      existing.refs++;
      return { entry: existing, created: false };
    }
    if (this.#entries.size >= this.max) {
      throw new ParallaxError(
        ErrorCode.LIMIT,
        `export table is full (${this.max} capabilities held by the peer)`,
      );
    }
    scope?.enterExport();
    const entry: ExportEntry = {
      id: newExportId(this.#ids.take()),
      hook: hook.addRef(),
      refs: 1,
      promise,
      scope,
    };
    this.#entries.set(entry.id, entry);
    if (!this.#byHook.has(hook)) this.#byHook.set(hook, entry);
    else {
      const bucket = this.#byScope.get(scope) ?? new Map<CapHook, ExportEntry>();
      this.#byScope.set(scope, bucket);
      bucket.set(hook, entry);
    }
    return { entry, created: true };
  }

  /** Drops `count` peer references; returns false if the peer released more than it holds. */
  release(id: ExportId, count: number): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined || count > entry.refs || count < 0) return false;
    entry.refs -= count;
    if (entry.refs === 0) this.#remove(entry);
    return true;
  }

  /** Drops every entry (the connection is gone). */
  clear(): void {
    for (const entry of [...this.#entries.values()]) this.#remove(entry);
  }

  #remove(entry: ExportEntry): void {
    this.#entries.delete(entry.id);
    if (this.#byHook.get(entry.hook) === entry) this.#byHook.delete(entry.hook);
    else {
      const bucket = this.#byScope.get(entry.scope);
      bucket?.delete(entry.hook);
      if (bucket?.size === 0) this.#byScope.delete(entry.scope);
    }
    this.#ids.give(entry.id);
    entry.hook.release();
    entry.scope?.leaveExport();
  }
}
