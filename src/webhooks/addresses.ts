/**
 * IP address classification for SSRF protection: which addresses an outbound webhook may never
 * reach. Pure functions over parsed addresses; IPv4 and IPv6, with the IPv6 forms that embed an
 * IPv4 address (mapped `::ffff:a.b.c.d`, translated, compatible, NAT64 `64:ff9b::/96`, 6to4
 * `2002::/16`) judged by the address they embed.
 */
import { isIPv4, isIPv6 } from "node:net";

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6). */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

/** Why an address may not be reached; `undefined` from {@link classifyAddress} means it may. */
export type AddressRefusal =
  | "unspecified"
  | "loopback"
  | "private"
  | "link-local"
  | "multicast"
  | "metadata"
  | "documentation"
  | "reserved";

/** Parses an IPv4 or IPv6 address (brackets and an IPv6 zone `%eth0` allowed); undefined when it is not one. */
export function parseIp(text: string): IpAddress | undefined {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone !== -1) s = s.slice(0, zone);
  if (isIPv4(s)) return { family: 4, bytes: Uint8Array.from(s.split(".").map(Number)) };
  if (!isIPv6(s)) return undefined;
  return { family: 6, bytes: parseIpv6(s) };
}

function parseIpv6(s: string): Uint8Array {
  let text = s;
  // A dotted IPv4 tail ("::ffff:1.2.3.4") is the last two 16-bit words.
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split(".").map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const toWords = (part: string) => (part === "" ? [] : part.split(":").map((w) => parseInt(w, 16)));
  const [head = "", rest] = text.split("::");
  const headWords = toWords(head);
  const restWords = rest === undefined ? [] : toWords(rest);
  const fill = rest === undefined ? 0 : 8 - headWords.length - restWords.length;
  const words = [...headWords, ...new Array<number>(Math.max(fill, 0)).fill(0), ...restWords];
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = (w >> 8) & 0xff;
    bytes[i * 2 + 1] = w & 0xff;
  });
  return bytes;
}

/** Formats a parsed address the canonical way (`127.0.0.1`, `::ffff:7f00:1`). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const words = Array.from(
    { length: 8 },
    (_, i) => ((ip.bytes[i * 2] ?? 0) << 8) | (ip.bytes[i * 2 + 1] ?? 0),
  );
  // Compress the longest run of zero words (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best === -1) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** A CIDR block. */
export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/** Parses `"10.0.0.0/8"`, `"fd00::/8"` or a single address (a /32 or /128); undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { ...ip, prefix };
}

/** True when `ip` lies in `cidr`. An IPv4-mapped IPv6 address also matches IPv4 blocks. */
export function inCidr(ip: IpAddress, cidr: Cidr): boolean {
  const candidate = ip.family === cidr.family ? ip : ip.family === 6 ? mappedIpv4(ip) : undefined;
  if (!candidate || candidate.family !== cidr.family) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((candidate.bytes[i] ?? 0) & mask) !== ((cidr.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** The IPv4 address in an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), if it is one. */
function mappedIpv4(ip: IpAddress): IpAddress | undefined {
  const b = ip.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return undefined;
  if (b[10] !== 0xff || b[11] !== 0xff) return undefined;
  return { family: 4, bytes: b.slice(12, 16) };
}

const block = (text: string): Cidr => parseCidr(text)!;

/** Specific addresses first: cloud metadata services. */
const METADATA: Cidr[] = [
  "169.254.169.254/32", // AWS, GCP, Azure, OpenStack, DigitalOcean
  "169.254.170.2/32", // AWS ECS task metadata
  "168.63.129.16/32", // Azure wire server
  "100.100.100.200/32", // Alibaba Cloud
  "192.0.0.192/32", // Oracle Cloud
  "fd00:ec2::254/128", // AWS IMDS over IPv6
].map(block);

const IPV4: Array<[Cidr, AddressRefusal]> = (
  [
    ["0.0.0.0/8", "unspecified"],
    ["10.0.0.0/8", "private"],
    ["100.64.0.0/10", "private"], // carrier-grade NAT, shared address space
    ["127.0.0.0/8", "loopback"],
    ["169.254.0.0/16", "link-local"],
    ["172.16.0.0/12", "private"],
    ["192.0.0.0/24", "reserved"], // IETF protocol assignments
    ["192.0.2.0/24", "documentation"],
    ["192.88.99.0/24", "reserved"], // 6to4 relay anycast
    ["192.168.0.0/16", "private"],
    ["198.18.0.0/15", "reserved"], // benchmarking
    ["198.51.100.0/24", "documentation"],
    ["203.0.113.0/24", "documentation"],
    ["224.0.0.0/4", "multicast"],
    ["240.0.0.0/4", "reserved"], // includes 255.255.255.255
  ] as const
).map(([c, r]) => [block(c), r]);

const IPV6: Array<[Cidr, AddressRefusal]> = (
  [
    ["::/128", "unspecified"],
    ["::1/128", "loopback"],
    ["64:ff9b:1::/48", "reserved"], // local-use NAT64
    ["100::/64", "reserved"], // discard-only
    ["2001::/23", "reserved"], // IETF protocol assignments, Teredo
    ["2001:db8::/32", "documentation"],
    ["3fff::/20", "documentation"],
    ["fc00::/7", "private"], // unique local
    ["fe80::/10", "link-local"],
    ["fec0::/10", "private"], // deprecated site-local
    ["ff00::/8", "multicast"],
  ] as const
).map(([c, r]) => [block(c), r]);

const GLOBAL_UNICAST = block("2000::/3");

/** The IPv4 address an IPv6 address embeds by a translation or tunnelling convention, if any. */
export function embeddedIpv4(ip: IpAddress): IpAddress | undefined {
  if (ip.family !== 6) return undefined;
  const b = ip.bytes;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = (at: number): IpAddress => ({ family: 4, bytes: b.slice(at, at + 4) });
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12); // ::ffff:a.b.c.d mapped
  if (zeros(0, 8) && b[8] === 0xff && b[9] === 0xff && zeros(10, 12)) return v4(12); // ::ffff:0:a.b.c.d translated
  if (zeros(0, 12) && !zeros(12, 16)) return v4(12); // ::a.b.c.d compatible (deprecated)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return v4(12); // NAT64
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2); // 6to4
  return undefined;
}

/**
 * Why `ip` must not be reached from a webhook sender, or `undefined` when it is a public address.
 * IPv6 outside global unicast (`2000::/3`) is refused as reserved.
 *
 * @example classifyAddress(parseIp("::ffff:127.0.0.1")!) === "loopback"
 */
export function classifyAddress(ip: IpAddress): AddressRefusal | undefined {
  if (METADATA.some((c) => c.family === ip.family && inCidr(ip, c))) return "metadata";
  if (ip.family === 4) return IPV4.find(([c]) => inCidr(ip, c))?.[1];
  const exact = IPV6.find(([c]) => c.prefix === 128 && inCidr(ip, c));
  if (exact) return exact[1];
  const embedded = embeddedIpv4(ip);
  if (embedded) return classifyAddress(embedded);
  const found = IPV6.find(([c]) => inCidr(ip, c));
  if (found) return found[1];
  return inCidr(ip, GLOBAL_UNICAST) ? undefined : "reserved";
}
