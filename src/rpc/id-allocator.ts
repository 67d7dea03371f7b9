/**
 * Allocates the ids we choose (questions, exports). Freed ids are reused before new ones are
 * minted, so ids stay small and dense as the spec recommends.
 *
 * Tests: test/rpc/hostile.test.ts ("drains to empty once a slow peer's Finishes arrive": ids reused).
 */
export class IdAllocator {
  #free: number[] | undefined;
  #next = 0;

  take(): number {
    const free = this.#free;
    return free !== undefined && free.length > 0 ? (free.pop() as number) : this.#next++;
  }

  give(id: number): void {
    if (this.#free === undefined) this.#free = [id];
    else this.#free.push(id);
  }
}
