/**
 * Money on the bank page: the ledger counts integer minor units (cents) as `bigint`; the page
 * shows them as the currency and reads what the user types back into minor units.
 *
 * Invariants: no amount passes through a JavaScript number (a float cannot hold every 64-bit
 * amount, nor 0.1 exactly): formatting hands Intl an exact decimal string, parsing works on the
 * digits. `parseAmount` accepts only what the ledger accepts (1 to 2^63 - 1 minor units) and no
 * more decimals than the currency has, and says precisely what is wrong otherwise.
 *
 * Tests: test/web/bank.test.ts ("money")
 */
import { ErrorCode, ParallaxError } from "../../errors.js";

const MAX_AMOUNT = (1n << 63n) - 1n;
const CURRENCY = /^[A-Z]{3}$/;

/** How many decimals the currency has (EUR 2, JPY 0, KWD 3); 2 for codes Intl does not know. */
export function minorDigits(currency: string): number {
  if (!CURRENCY.test(currency)) return 2;
  try {
    const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
      .maximumFractionDigits;
    return typeof digits === "number" && digits >= 0 && digits <= 6 ? digits : 2;
  } catch {
    return 2;
  }
}

/** `1234n` with 2 digits → "12.34"; `-5n` → "-0.05". Exact. */
export function decimalString(minor: bigint, digits: number): `${number}` {
  const negative = minor < 0n;
  const abs = (negative ? -minor : minor).toString().padStart(digits + 1, "0");
  const int = abs.slice(0, abs.length - digits);
  const frac = abs.slice(abs.length - digits);
  return `${negative ? "-" : ""}${int}${digits > 0 ? `.${frac}` : ""}` as `${number}`;
}

/** Minor units as the currency, in the user's locale (or `locale`): `1234n, "EUR"` → "€12.34". */
export function formatMoney(minor: bigint, currency: string, locale?: string): string {
  const digits = minorDigits(currency);
  const exact = decimalString(minor, digits);
  if (!CURRENCY.test(currency)) return `${exact} ${currency}`;
  try {
    return new Intl.NumberFormat(locale, {
      style: "currency",
      currency,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(exact);
  } catch {
    return `${exact} ${currency}`;
  }
}

/**
 * What the user typed ("12.5", "12,50", "1250") as minor units of `currency`: digits with at most
 * one decimal point or comma and at most the currency's decimals; spaces around are ignored.
 * Throws PARALLAX_ERR_BAD_ARGUMENT saying what is wrong.
 */
export function parseAmount(text: string, currency: string): bigint {
  const digits = minorDigits(currency);
  const typed = text.trim();
  const match = /^(\d*)(?:[.,](\d*))?$/.exec(typed);
  if (typed === "" || match === null || (match[1] === "" && (match[2] ?? "") === "")) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `write the amount as a number of ${currency}, like ${decimalString(1250n, digits)}`,
    );
  }
  const int = match[1] ?? "";
  const frac = match[2] ?? "";
  if (frac.length > digits) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      digits === 0
        ? `${currency} has no decimals: write a whole number`
        : `${currency} has ${digits} decimal${digits === 1 ? "" : "s"}; "${typed}" has ${frac.length}`,
    );
  }
  const minor = BigInt(`${int}${frac.padEnd(digits, "0")}` || "0");
  if (minor === 0n) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "the amount must be more than zero");
  if (minor > MAX_AMOUNT) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `the amount is too large: at most ${decimalString(MAX_AMOUNT, digits)} ${currency}`,
    );
  }
  return minor;
}

/** An account number as typed: 1 to 2^53 - 1, digits only. */
export function parseAccountNumber(text: string): bigint {
  const typed = text.trim();
  if (!/^\d{1,16}$/.test(typed) || BigInt(typed) < 1n || BigInt(typed) > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `"${typed}" is not an account number (digits, like 1002)`,
    );
  }
  return BigInt(typed);
}
