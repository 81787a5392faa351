import { describe, expect, it } from "vitest";
import { assertEndpointSecret, generateSecret, secretKey } from "./secrets.js";

describe("secrets", () => {
  it("generates whsec_ + base64 of 24 to 64 random bytes, 32 by default", () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(secretKey(secret)).toHaveLength(32);
    expect(secretKey(generateSecret(24))).toHaveLength(24);
    expect(secretKey(generateSecret(64))).toHaveLength(64);
    expect(generateSecret()).not.toBe(secret);
    expect(() => generateSecret(16)).toThrow(/24 to 64/);
    expect(() => generateSecret(65)).toThrow(/24 to 64/);
  });

  it("checks secrets given for endpoints", () => {
    expect(() => assertEndpointSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toThrow(/whsec_/);
    expect(() => assertEndpointSecret("whsec_c2hvcnQ=")).toThrow(/24 to 64 bytes/);
    expect(() => assertEndpointSecret("whsec_%%%")).toThrow(/base64/);
    const ok = generateSecret();
    expect(assertEndpointSecret(ok)).toBe(ok);
  });
});
