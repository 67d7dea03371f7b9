/**
 * JSON-compatible values on the wire: the router's payloads (args, kwargs), roster data and
 * metadata values travel as JSON text (RFC 8259), checked here before anything keeps or forwards
 * them.
 *
 * Invariants: a value accepted by `readJson` parses with `JSON.parse`, is at most `maxBytes` of
 * UTF-8 and nests at most `maxDepth` arrays/objects deep; the depth is measured by a scan before
 * parsing, so a hostile "[[[[..." costs one linear pass and never a deep recursion. Every refusal
 * is PARALLAX_ERR_BAD_ARGUMENT naming the value and the fault.
 *
 * Tests: test/services/router/payload.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";

export interface JsonLimits {
  readonly maxBytes: number;
  readonly maxDepth: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = Object.freeze({ maxBytes: 64 * 1024, maxDepth: 32 });

export type JsonKind = "any" | "array" | "object";

/**
 * Checks `text` as JSON of `kind`; "" stands for the kind's empty value when `emptyAs` is given.
 * Answers the text unchanged (or `emptyAs`).
 */
export function readJson(
  text: string,
  what: string,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
  kind: JsonKind = "any",
  emptyAs?: string,
): string {
  if (text === "" && emptyAs !== undefined) return emptyAs;
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > limits.maxBytes) {
    throw bad(`${what} is ${bytes} bytes; at most ${limits.maxBytes}`);
  }
  const depth = nestingDepth(text);
  if (depth > limits.maxDepth) {
    throw bad(`${what} nests ${depth} deep; at most ${limits.maxDepth}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(`${what} is not JSON: ${(err as Error).message}`);
  }
  if (kind === "array" && !Array.isArray(value)) throw bad(`${what} must be a JSON array`);
  if (kind === "object" && (value === null || typeof value !== "object" || Array.isArray(value))) {
    throw bad(`${what} must be a JSON object`);
  }
  return text;
}

/** The deepest nesting of [ and { outside strings (0 for scalars); linear, no recursion. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}

/** A router payload as it travels: JSON text. */
export interface PayloadText {
  readonly args: string;
  readonly kwargs: string;
}

/** Checks a payload: args a JSON array, kwargs an object ("" allowed), together within `limits`. */
export function readPayload(payload: PayloadText, limits: JsonLimits, what = "the payload"): PayloadText {
  const { args, kwargs } = payload;
  if (typeof args !== "string" || typeof kwargs !== "string") {
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what}'s args and kwargs must be text`);
  }
  const bytes = Buffer.byteLength(args, "utf8") + Buffer.byteLength(kwargs, "utf8");
  if (bytes > limits.maxBytes) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `${what} is ${bytes} bytes (args and kwargs together); at most ${limits.maxBytes}`,
    );
  }
  readJson(args, `${what}'s args`, limits, "array", "[]");
  readJson(kwargs, `${what}'s kwargs`, limits, "object", "{}");
  return { args, kwargs };
}
