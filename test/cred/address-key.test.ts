/**
 * addressKey: a table of the forms people meet, then properties checked against Node's own
 * address handling as an independent oracle — `net.isIP` for what is an address at all, and
 * `net.BlockList` (a /64 subnet rule) for which IPv6 addresses share a /64.
 */
import { BlockList, isIP, isIPv4, isIPv6 } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addressKey } from "../../src/cred/address-key.js";

/** How one address may be written; every choice gives text `net.isIPv6` accepts. */
interface Spelling {
  readonly leadingZeros: boolean;
  readonly upper: boolean;
  /** Which run of zero groups `::` replaces (modulo the runs there are), or none. */
  readonly gap: number | null;
  /** Write the last 32 bits as a dotted quad. */
  readonly dotted: boolean;
  readonly bracket: boolean;
  readonly zone: string | null;
}

const spelling: fc.Arbitrary<Spelling> = fc.record({
  leadingZeros: fc.boolean(),
  upper: fc.boolean(),
  gap: fc.option(fc.nat(7)),
  dotted: fc.boolean(),
  bracket: fc.boolean(),
  zone: fc.option(fc.constantFrom("eth0", "1", "en0.1", "a-b", "x:y")),
});

/** `groups` (eight 16-bit numbers) written as `how` says. */
function spell(groups: readonly number[], how: Spelling): string {
  const count = how.dotted ? 6 : 8;
  const hex = groups.slice(0, count).map((g) => {
    const h = how.leadingZeros ? g.toString(16).padStart(4, "0") : g.toString(16);
    return how.upper ? h.toUpperCase() : h;
  });
  const runs: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    if (groups[i] !== 0) continue;
    let j = i;
    while (j < count && groups[j] === 0) j++;
    runs.push([i, j]);
    i = j;
  }
  let text: string;
  if (how.gap === null || runs.length === 0) text = hex.join(":");
  else {
    const [from, to] = runs[how.gap % runs.length] as [number, number];
    text = `${hex.slice(0, from).join(":")}::${hex.slice(to).join(":")}`;
  }
  if (how.dotted) {
    const quad = [groups[6] as number, groups[7] as number].flatMap((g) => [g >> 8, g & 0xff]).join(".");
    text = text.endsWith("::") ? text + quad : `${text}:${quad}`;
  }
  if (how.zone !== null) text += `%${how.zone}`;
  return how.bracket ? `[${text}]` : text;
}

/** True when the address carries an IPv4 address (mapped, compatible, NAT64), keyed as that. */
function embedsIPv4(g: readonly number[]): boolean {
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  return (
    (zeros(5) && g[5] === 0xffff) ||
    (zeros(6) && (g[6] !== 0 || (g[7] as number) > 1)) ||
    (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0))
  );
}

const group = fc.integer({ min: 0, max: 0xffff });
/** Mostly small groups and zeros, so `::` and embedded-IPv4 shapes come up often. */
const lumpyGroup = fc.oneof(group, fc.constant(0), fc.integer({ min: 0, max: 15 }));
const ipv6 = fc.array(lumpyGroup, { minLength: 8, maxLength: 8 });
const plainIPv6 = ipv6.filter((g) => !embedsIPv4(g));
const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = fc.tuple(octet, octet, octet, octet);

function sameSlash64(key: string, address: string): boolean {
  const list = new BlockList();
  list.addSubnet(key.replace(/\/64$/, ""), 64, "ipv6");
  return list.check(address, "ipv6");
}

describe("addressKey", () => {
  it("keys the common forms as the table says", () => {
    const table: [string, string][] = [
      ["1.2.3.4", "1.2.3.4"],
      ["0.0.0.0", "0.0.0.0"],
      ["255.255.255.255", "255.255.255.255"],
      ["::ffff:1.2.3.4", "1.2.3.4"],
      ["::FFFF:1.2.3.4", "1.2.3.4"],
      ["::ffff:102:304", "1.2.3.4"],
      ["0:0:0:0:0:ffff:0102:0304", "1.2.3.4"],
      ["[::ffff:1.2.3.4]", "1.2.3.4"],
      ["::ffff:1.2.3.4%eth0", "1.2.3.4"],
      ["::1.2.3.4", "1.2.3.4"],
      ["64:ff9b::1.2.3.4", "1.2.3.4"],
      ["64:ff9b::102:304", "1.2.3.4"],
      ["2001:db8::1", "2001:db8::/64"],
      ["2001:DB8:0:0:ffff::2", "2001:db8::/64"],
      ["[2001:db8::3]", "2001:db8::/64"],
      ["2001:db8::4%eth0", "2001:db8::/64"],
      ["2001:0db8:0000:0000:0000:0000:0000:0005", "2001:db8::/64"],
      ["2001:db8:0:1::1", "2001:db8:0:1::/64"],
      ["2001:0:0:1::", "2001:0:0:1::/64"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4::/64"],
      ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4::/64"],
      ["fe80::1%eth0", "fe80::/64"],
      ["64:ff9b:1::1", "64:ff9b:1::/64"],
      ["::1", "::/64"],
      ["::", "::/64"],
    ];
    for (const [address, key] of table) expect(addressKey(address), address).toBe(key);
  });

  it("answers the unknown address for anything that is not one, and never throws", () => {
    const junk = [
      "",
      "localhost",
      "1.2.3",
      "01.2.3.4",
      "256.0.0.1",
      "1.2.3.4:80",
      " 1.2.3.4",
      "[1.2.3.4]",
      "1::2::3",
      "12345::",
      "g::1",
      ":1::2",
      "1::2:",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4::5:6:7:8",
      "fe80::1%",
      "fe80::1%a b",
      "[::1]:443",
      "[2001:db8::1",
      "%eth0",
      "::ffff:1.2.3.04",
      "::ffff:1.2.3.4.5",
      "1.2.3.4%eth0",
    ];
    for (const address of junk) expect(addressKey(address), address).toBe("");
    expect(addressKey(undefined as unknown as string)).toBe("");
    expect(addressKey(42 as unknown as string)).toBe("");
  });

  it("keys an IPv4 address as itself, and its IPv4-mapped spellings the same", () => {
    fc.assert(
      fc.property(ipv4, ([a, b, c, d]) => {
        const quad = `${a}.${b}.${c}.${d}`;
        expect(isIPv4(quad)).toBe(true);
        expect(addressKey(quad)).toBe(quad);
        const hi = ((a << 8) | b).toString(16);
        const lo = ((c << 8) | d).toString(16);
        for (const mapped of [`::ffff:${quad}`, `::ffff:${hi}:${lo}`, `[::FFFF:${hi.toUpperCase()}:${lo}]`]) {
          expect(isIP(mapped.replace(/^\[(.*)\]$/, "$1")), mapped).toBe(6);
          expect(addressKey(mapped), mapped).toBe(quad);
        }
      }),
    );
  });

  it("gives every spelling of one IPv6 address the same key", () => {
    fc.assert(
      fc.property(ipv6, spelling, spelling, (groups, one, other) => {
        const a = spell(groups, one);
        const b = spell(groups, other);
        expect(isIPv6(a.replace(/^\[(.*)\]$/, "$1")), a).toBe(true);
        expect(addressKey(a), `${a} vs ${b}`).toBe(addressKey(b));
      }),
    );
  });

  it("keys a plain IPv6 address by a /64 that holds it, and that /64 keys as itself", () => {
    fc.assert(
      fc.property(plainIPv6, spelling, (groups, how) => {
        const key = addressKey(spell(groups, how));
        expect(key).toMatch(/^[0-9a-f:]*::\/64$/);
        expect(sameSlash64(key, spell(groups, { ...how, bracket: false, zone: null }))).toBe(true);
        expect(addressKey(key.replace(/\/64$/, ""))).toBe(key);
      }),
    );
  });

  it("joins two IPv6 addresses exactly when Node's BlockList puts them in one /64", () => {
    const pair = fc.oneof(
      // Same upper half, any lower half: always one /64.
      fc
        .tuple(plainIPv6, fc.array(group, { minLength: 4, maxLength: 4 }))
        .map(([g, low]) => [g, [...g.slice(0, 4), ...low]]),
      // One bit of the upper half flipped: never one /64.
      fc.tuple(plainIPv6, fc.nat(63)).map(([g, bit]) => {
        const h = [...g];
        h[bit >> 4] = (h[bit >> 4] as number) ^ (1 << (bit & 15));
        return [g, h];
      }),
      fc.tuple(plainIPv6, plainIPv6),
    );
    fc.assert(
      fc.property(
        pair.filter(([, b]) => !embedsIPv4(b)),
        spelling,
        spelling,
        ([a, b], howA, howB) => {
          const plain = { bracket: false, zone: null };
          const same = sameSlash64(addressKey(spell(a, howA)), spell(b, { ...howB, ...plain }));
          expect(addressKey(spell(a, howA)) === addressKey(spell(b, howB))).toBe(same);
        },
      ),
    );
  });

  it("accepts exactly the text Node calls an IP address (plus brackets around IPv6)", () => {
    const near = fc.string({
      unit: fc.constantFrom(..."0123456789abcdefABCDEFgx:.%[] "),
      maxLength: 46,
    });
    const written = fc.oneof(
      fc.tuple(ipv6, spelling).map(([g, how]) => spell(g, how)),
      ipv4.map((q) => q.join(".")),
    );
    // Near misses: a valid address with one character dropped, doubled or replaced.
    const mangled = fc
      .tuple(written, fc.nat(), fc.constantFrom("drop", "double", "replace"), fc.constantFrom(..."0f:.%[]g"))
      .map(([s, at, how, c]) => {
        const i = at % s.length;
        if (how === "drop") return s.slice(0, i) + s.slice(i + 1);
        if (how === "double") return s.slice(0, i + 1) + s.slice(i);
        return s.slice(0, i) + c + s.slice(i + 1);
      });
    fc.assert(
      fc.property(fc.oneof(near, fc.string(), written, mangled), (s) => {
        const inner = /^\[(.*)\]$/s.exec(s);
        const valid = inner !== null ? isIPv6(inner[1] as string) : isIP(s) !== 0;
        expect(addressKey(s) !== "", JSON.stringify(s)).toBe(valid);
      }),
      { numRuns: 3000 },
    );
  });
});
