/**
 * The key under which a remote address is counted (login throttling, pre-login connections).
 *
 * One person can cheaply hold many addresses of one kind, and the key groups those together:
 * - IPv4 `a.b.c.d` is its own key, in canonical dotted-quad text (`1.2.3.4`).
 * - IPv6 that carries an IPv4 address is keyed as that IPv4 address, so a dual-stack socket's
 *   `::ffff:1.2.3.4` and a plain `1.2.3.4` share one count: IPv4-mapped (`::ffff:0:0/96`, also
 *   written `::ffff:102:304`), IPv4-compatible (`::/96` except `::` and `::1`) and the NAT64
 *   well-known prefix (`64:ff9b::/96`, RFC 6052; without this rule every IPv4 client of a server
 *   behind a NAT64/SIIT translator would share one /64).
 * - Any other IPv6 address is keyed by its /64 prefix, the smallest block a site is usually
 *   given, written in RFC 5952 form with the length: `2001:db8::1`, `2001:DB8:0:0:ffff::2`,
 *   `[2001:db8::3]` and `2001:db8::4%eth0` are all `2001:db8::/64`.
 *
 * Accepted text: what `net.isIPv4` / `net.isIPv6` accept (no leading zeros in dotted quads, zone
 * ids of `[0-9A-Za-z.:-]`), plus one pair of brackets around IPv6. Anything else, including ""
 * and ports, gives "" — the unknown address, which callers do not track. This function never
 * throws.
 *
 * Keys of the two families never collide: IPv4 keys have no `:`, IPv6 keys always end in `/64`.
 *
 * Tests: test/cred/address-key.test.ts
 */

/** The counting key of `address` (see the header); "" when it is not an IP address. */
export function addressKey(address: string): string {
  if (typeof address !== "string" || address.length === 0) return "";
  let text = address;
  const bracketed = text.startsWith("[") && text.endsWith("]");
  if (bracketed) text = text.slice(1, -1);
  else {
    const v4 = parseIPv4(text);
    if (v4 !== undefined) return formatIPv4(v4);
  }
  const g = parseIPv6(text);
  if (g === undefined) return "";
  const low32 = (g[6] as number) * 0x10000 + (g[7] as number);
  if (zero(g, 0, 5) && g[5] === 0xffff) return formatIPv4(low32);
  if (zero(g, 0, 6) && low32 > 1) return formatIPv4(low32);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(g, 2, 6)) return formatIPv4(low32);
  return prefix64(g);
}

/** True when groups [from, to) are all zero. */
function zero(groups: readonly number[], from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (groups[i] !== 0) return false;
  return true;
}

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const ZONE = /^[0-9A-Za-z.:-]+$/;

/** The 32-bit value of a dotted quad without leading zeros, or undefined. */
function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

function formatIPv4(value: number): string {
  return `${Math.floor(value / 0x1000000)}.${Math.floor(value / 0x10000) % 256}.${Math.floor(value / 0x100) % 256}.${value % 256}`;
}

/** The eight 16-bit groups of an IPv6 address (zone id allowed and dropped), or undefined. */
function parseIPv6(text: string): number[] | undefined {
  let body = text;
  const percent = body.indexOf("%");
  if (percent >= 0) {
    if (!ZONE.test(body.slice(percent + 1))) return undefined;
    body = body.slice(0, percent);
  }
  // A dotted quad may stand for the last two groups.
  let v4: number | undefined;
  if (body.includes(".")) {
    const colon = body.lastIndexOf(":");
    if (colon < 0) return undefined;
    v4 = parseIPv4(body.slice(colon + 1));
    if (v4 === undefined) return undefined;
    body = `${body.slice(0, colon + 1)}0:0`;
  }
  const groups = parseHexGroups(body);
  if (groups === undefined) return undefined;
  if (v4 !== undefined) {
    groups[6] = Math.floor(v4 / 0x10000);
    groups[7] = v4 % 0x10000;
  }
  return groups;
}

/** Eight groups from hex text with at most one `::` (standing for one or more zero groups). */
function parseHexGroups(body: string): number[] | undefined {
  const gap = body.indexOf("::");
  if (gap !== body.lastIndexOf("::")) return undefined;
  const hex = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    for (const group of part.split(":")) {
      if (!HEX_GROUP.test(group)) return undefined;
      out.push(Number.parseInt(group, 16));
    }
    return out;
  };
  if (gap < 0) {
    const all = hex(body);
    return all !== undefined && all.length === 8 ? all : undefined;
  }
  const head = hex(body.slice(0, gap));
  const tail = hex(body.slice(gap + 2));
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** The /64 holding `groups`, in RFC 5952 text: the `::` always covers the zero interface id. */
function prefix64(groups: readonly number[]): string {
  const high = groups.slice(0, 4);
  while (high.length > 0 && high[high.length - 1] === 0) high.pop();
  return `${high.map((g) => g.toString(16)).join(":")}::/64`;
}
