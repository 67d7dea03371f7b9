/**
 * A line buffer with indentation, for emitting TypeScript.
 *
 * Tests: test/codegen/
 */
export class CodeWriter {
  readonly #lines: string[] = [];
  #depth = 0;

  line(text = ""): this {
    this.#lines.push(text === "" ? "" : "  ".repeat(this.#depth) + text);
    return this;
  }

  /** Writes `open`, runs `body` one level deeper, then writes `close`. */
  block(open: string, body: () => void, close = "}"): this {
    this.line(open);
    this.#depth++;
    body();
    this.#depth--;
    return this.line(close);
  }

  /** A JSDoc comment, or nothing for an empty doc. */
  doc(text: string): this {
    const trimmed = text.trim();
    if (trimmed === "") return this;
    const body = trimmed.replace(/\*\//g, "*\\/").split("\n");
    if (body.length === 1) return this.line(`/** ${body[0]} */`);
    this.line("/**");
    for (const l of body) this.line(l.trimEnd() === "" ? " *" : ` * ${l.trimEnd()}`);
    return this.line(" */");
  }

  toString(): string {
    return `${this.#lines.join("\n")}\n`;
  }
}
