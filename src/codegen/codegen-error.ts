/**
 * An error the compiler plugin reports instead of writing wrong code: a `ParallaxError` with code
 * `PARALLAX_ERR_CODEGEN`, so the build tool's failures belong to the one error family too.
 *
 * Tests: test/codegen/plugin.test.ts.
 */
import { ErrorCode, ParallaxError } from "../errors.js";

export class CodegenError extends ParallaxError {
  constructor(message: string) {
    super(ErrorCode.CODEGEN, message);
  }
}
