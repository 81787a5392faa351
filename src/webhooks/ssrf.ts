/**
 * SSRF protection for outbound webhooks: a URL is allowed only with an allowed scheme, and only
 * to addresses that are not loopback, private, link-local, multicast, unspecified, reserved or a
 * cloud metadata service — unless the address or host is on an explicit allowlist (for
 * development). The address that was checked is the one the connector must use, so a DNS answer
 * that changes between check and connect (rebinding) cannot redirect the request.
 */
import { lookup } from "node:dns/promises";
import { InvalidArgumentError } from "../core/errors.js";
import {
  classifyAddress,
  formatIp,
  inCidr,
  parseCidr,
  parseIp,
  type AddressRefusal,
  type Cidr,
  type IpAddress,
} from "./addresses.js";
import { WebhookAddressRefusedError, WebhookDeliveryError } from "./errors.js";

/** One address a host name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to its addresses. Default: the operating system's resolver (`dns.lookup`). */
export type WebhookResolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** Options of {@link createTargetPolicy}. */
export interface TargetPolicyOptions {
  /**
   * Targets allowed even though they are not public — for development and tests only: CIDR blocks
   * (`"127.0.0.0/8"`, `"fd00::/8"`), single addresses (`"::1"`), host names (`"localhost"`) and
   * wildcard domains (`"*.svc.cluster.local"`). Default: none.
   */
  allow?: readonly string[];
  /** Refuse `http:` URLs. Default `false`. */
  httpsOnly?: boolean;
  resolver?: WebhookResolver;
}

/** A URL whose address passed the check: connect to `address`, while `url` keeps the name for Host and TLS SNI. */
export interface CheckedTarget {
  url: URL;
  /** The host name or address as in the URL, without IPv6 brackets. */
  hostname: string;
  address: string;
  family: 4 | 6;
}

/** The SSRF policy: checks URLs up front, and resolves and checks their addresses before each connection. */
export interface TargetPolicy {
  /** Parses and checks a URL without DNS: scheme, and the address when the host is an IP literal. Throws. */
  checkUrl(url: string | URL): URL;
  /** Resolves the URL's host and returns an allowed address to connect to. Throws {@link WebhookAddressRefusedError}. */
  resolve(url: URL): Promise<CheckedTarget>;
}

const systemResolver: WebhookResolver = async (hostname) =>
  (await lookup(hostname, { all: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

const DESCRIBE: Record<AddressRefusal, string> = {
  unspecified: "an unspecified address",
  loopback: "a loopback address",
  private: "a private address",
  "link-local": "a link-local address",
  multicast: "a multicast address",
  metadata: "a cloud metadata address",
  documentation: "a documentation address",
  reserved: "a reserved address",
};

/** Reads the allowlist into address blocks and host patterns. */
function readAllowlist(allow: readonly string[]) {
  const blocks: Cidr[] = [];
  const hosts: Array<(host: string) => boolean> = [];
  for (const entry of allow) {
    if (typeof entry !== "string" || entry.trim() === "") {
      throw new InvalidArgumentError("allow entries are non-empty strings", "allow");
    }
    const text = entry.trim().toLowerCase();
    const cidr = parseCidr(text);
    if (cidr) blocks.push(cidr);
    else if (text.includes("/")) {
      throw new InvalidArgumentError(
        `allow entry ${JSON.stringify(entry)} is not a valid CIDR block`,
        "allow",
      );
    } else if (text.startsWith("*.")) {
      const suffix = text.slice(1);
      hosts.push((host) => host.endsWith(suffix) && host.length > suffix.length);
    } else hosts.push((host) => host === text);
  }
  return { blocks, hosts };
}

/**
 * Builds the SSRF policy.
 *
 * @example
 * const policy = createTargetPolicy({ allow: ["127.0.0.1/32"] }); // development only
 * const target = await policy.resolve(policy.checkUrl("http://127.0.0.1:3000/hooks"));
 */
export function createTargetPolicy(options: TargetPolicyOptions = {}): TargetPolicy {
  const { blocks, hosts } = readAllowlist(options.allow ?? []);
  const resolver = options.resolver ?? systemResolver;
  const httpsOnly = options.httpsOnly ?? false;

  const hostAllowed = (hostname: string) => hosts.some((h) => h(hostname.toLowerCase()));
  const refusal = (ip: IpAddress): AddressRefusal | undefined => {
    const why = classifyAddress(ip);
    return why === undefined || blocks.some((b) => inCidr(ip, b)) ? undefined : why;
  };
  const refuse = (url: URL, why: AddressRefusal, address: string) =>
    new WebhookAddressRefusedError(
      url.href,
      why,
      address,
      `webhook URL ${url.origin} resolves to ${address}, ${DESCRIBE[why]}; refused (SSRF protection; allowlist it for development with the allow option)`,
    );

  function checkUrl(input: string | URL): URL {
    let url: URL;
    try {
      url = new URL(String(input));
    } catch {
      throw new InvalidArgumentError(`${JSON.stringify(String(input))} is not an absolute URL`, "url");
    }
    checkScheme(url);
    const literal = parseIp(url.hostname);
    if (literal) checkLiteral(url, literal);
    return url;
  }

  function checkLiteral(url: URL, literal: IpAddress): void {
    if (hostAllowed(bare(url.hostname))) return;
    const why = refusal(literal);
    if (why) throw refuse(url, why, formatIp(literal));
  }

  function checkScheme(url: URL): void {
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new WebhookAddressRefusedError(
        url.href,
        "scheme",
        undefined,
        `webhook URLs are http: or https:, got ${url.protocol}`,
      );
    }
    if (httpsOnly && url.protocol !== "https:") {
      throw new WebhookAddressRefusedError(
        url.href,
        "https-only",
        undefined,
        `webhook URL ${url.origin} is not https: and httpsOnly is set`,
      );
    }
  }

  async function resolve(url: URL): Promise<CheckedTarget> {
    checkScheme(url);
    const hostname = bare(url.hostname);
    const literal = parseIp(hostname);
    if (literal) {
      checkLiteral(url, literal);
      return { url, hostname, address: formatIp(literal), family: literal.family };
    }
    let answers: readonly ResolvedAddress[];
    try {
      answers = await resolver(hostname);
    } catch (cause) {
      throw new WebhookDeliveryError(
        "WEBHOOK_NETWORK",
        `cannot resolve ${hostname}: ${(cause as Error).message}`,
        undefined,
        { cause },
      );
    }
    const trusted = hostAllowed(hostname);
    let first: { why: AddressRefusal; address: string } | undefined;
    for (const answer of answers) {
      const ip = parseIp(answer.address);
      if (!ip) continue;
      const why = trusted ? undefined : refusal(ip);
      // Only an address that passed is ever handed to the connector.
      if (why === undefined) return { url, hostname, address: formatIp(ip), family: ip.family };
      first ??= { why, address: formatIp(ip) };
    }
    if (first) throw refuse(url, first.why, first.address);
    throw new WebhookDeliveryError("WEBHOOK_NETWORK", `${hostname} resolves to no address`, undefined);
  }

  return { checkUrl, resolve };
}

/** A URL host name without IPv6 brackets. */
function bare(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
}
