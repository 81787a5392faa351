import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { createTargetPolicy, type WebhookResolver } from "./ssrf.js";

const resolverOf =
  (answers: Record<string, string[]>): WebhookResolver =>
  (host) =>
    Promise.resolve(
      (answers[host] ?? []).map((address) => ({ address, family: address.includes(":") ? 6 : 4 })),
    );

describe("SSRF target policy", () => {
  it("refuses host names that resolve to non-public addresses, whichever form they take", async () => {
    const policy = createTargetPolicy({
      resolver: resolverOf({
        "loop.test": ["127.0.0.1"],
        "ten.test": ["10.0.0.1"],
        "meta.test": ["169.254.169.254"],
        "six.test": ["::1"],
        "mapped.test": ["::ffff:127.0.0.1"],
      }),
    });
    const reasons: Record<string, string> = {
      "loop.test": "loopback",
      "ten.test": "private",
      "meta.test": "metadata",
      "six.test": "loopback",
      "mapped.test": "loopback",
    };
    for (const [host, reason] of Object.entries(reasons)) {
      const error = await policy.resolve(new URL(`https://${host}/hook`)).catch((e: unknown) => e);
      expect(isPatchbayError(error, "WEBHOOK_ADDRESS_REFUSED"), host).toBe(true);
      expect(error).toMatchObject({ reason });
    }
  });

  it("refuses IP-literal URLs before any DNS, at create time", () => {
    const policy = createTargetPolicy({ resolver: () => Promise.reject(new Error("no DNS expected")) });
    for (const url of [
      "http://127.0.0.1/",
      "http://[::1]:8080/",
      "http://[::ffff:127.0.0.1]/",
      "http://0x7f.1/",
      "http://169.254.169.254/latest",
    ]) {
      const error = (() => {
        try {
          policy.checkUrl(url);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(isPatchbayError(error, "WEBHOOK_ADDRESS_REFUSED"), url).toBe(true);
    }
  });

  it("connects only to an address that passed: a mixed answer yields the public one", async () => {
    const policy = createTargetPolicy({
      resolver: resolverOf({ "mixed.test": ["10.1.1.1", "93.184.215.14"] }),
    });
    const target = await policy.resolve(new URL("https://mixed.test/x"));
    expect(target).toMatchObject({ address: "93.184.215.14", family: 4, hostname: "mixed.test" });
  });

  it("allows what the allowlist names: CIDRs, addresses and host names", async () => {
    const policy = createTargetPolicy({
      allow: ["127.0.0.0/8", "::1", "dev.internal", "*.svc.local"],
      resolver: resolverOf({
        "dev.internal": ["10.0.0.7"],
        "api.svc.local": ["192.168.3.3"],
        "other.test": ["10.0.0.8"],
      }),
    });
    expect((await policy.resolve(new URL("http://127.0.0.1:3000/"))).address).toBe("127.0.0.1");
    expect((await policy.resolve(new URL("http://[::1]:3000/"))).address).toBe("::1");
    expect((await policy.resolve(new URL("http://dev.internal/"))).address).toBe("10.0.0.7");
    expect((await policy.resolve(new URL("http://api.svc.local/"))).address).toBe("192.168.3.3");
    await expect(policy.resolve(new URL("http://other.test/"))).rejects.toMatchObject({
      code: "WEBHOOK_ADDRESS_REFUSED",
    });
    await expect(policy.resolve(new URL("http://10.0.0.1/"))).rejects.toMatchObject({ reason: "private" });
  });

  it("refuses other schemes, and http: when httpsOnly", () => {
    expect(() => createTargetPolicy().checkUrl("ftp://example.com/")).toThrow(/http: or https:/);
    expect(() => createTargetPolicy({ httpsOnly: true }).checkUrl("http://example.com/")).toThrow(
      /httpsOnly/,
    );
    expect(createTargetPolicy({ httpsOnly: true }).checkUrl("https://example.com/h").href).toBe(
      "https://example.com/h",
    );
    expect(() => createTargetPolicy().checkUrl("not a url")).toThrow(/absolute URL/);
  });

  it("reports a name that does not resolve as a retryable network failure", async () => {
    const policy = createTargetPolicy({ resolver: () => Promise.reject(new Error("ENOTFOUND")) });
    await expect(policy.resolve(new URL("https://nowhere.test/"))).rejects.toMatchObject({
      code: "WEBHOOK_NETWORK",
      retryable: true,
    });
  });

  it("refuses a malformed allowlist", () => {
    expect(() => createTargetPolicy({ allow: ["10.0.0.0/40"] })).toThrow(/CIDR/);
  });
});
