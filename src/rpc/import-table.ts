/**
 * Capabilities the peer hosts that we hold.
 *
 * Invariant: an entry exists while some local reference exists; `remoteRefs` counts how many
 * times the peer sent us the id, which is what the Release we send when the last local reference
 * goes must carry.
 *
 * Tests: test/rpc/hostile.test.ts (maxImports, Release), test/rpc/rpc-connection.test.ts.
 */
import { ErrorCode, ParallaxError } from "../errors.js";
import type { ImportId } from "../wire/rpc-ids.js";

export interface ImportEntry<H> {
  readonly id: ImportId;
  readonly hook: H;
  remoteRefs: number;
}

export class ImportTable<H> {
  readonly #entries = new Map<ImportId, ImportEntry<H>>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.#entries.size;
  }

  get(id: ImportId): ImportEntry<H> | undefined {
    return this.#entries.get(id);
  }

  add(id: ImportId, hook: H): ImportEntry<H> {
    if (this.#entries.size >= this.max) {
      throw new ParallaxError(ErrorCode.LIMIT, `import table is full (${this.max} capabilities)`);
    }
    const entry = { id, hook, remoteRefs: 0 };
    this.#entries.set(id, entry);
    return entry;
  }

  delete(id: ImportId): void {
    this.#entries.delete(id);
  }

  values(): IterableIterator<ImportEntry<H>> {
    return this.#entries.values();
  }

  clear(): void {
    this.#entries.clear();
  }
}
