/**
 * Allocates the ids we choose (questions, exports). Freed ids are reused before new ones are
 * minted, so ids stay small and dense as the spec recommends.
 */
export class IdAllocator {
  readonly #free: number[] = [];
  #next = 0;

  take(): number {
    return this.#free.length > 0 ? (this.#free.pop() as number) : this.#next++;
  }

  give(id: number): void {
    this.#free.push(id);
  }
}
