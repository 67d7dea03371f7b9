/** An error the compiler plugin reports instead of writing wrong code. */
export class CodegenError extends Error {
  override readonly name = "CodegenError";
}
