import { describe, expect, it } from "vitest";
import { classifyAddress, embeddedIpv4, formatIp, inCidr, parseCidr, parseIp } from "./addresses.js";

const classify = (text: string) => {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP: ${text}`);
  return classifyAddress(ip);
};

describe("classifyAddress", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.5.4", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["169.254.169.254", "metadata"],
    ["169.254.170.2", "metadata"],
    ["168.63.129.16", "metadata"],
    ["100.100.100.200", "metadata"],
    ["169.254.1.1", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["255.255.255.255", "reserved"],
    ["192.0.2.10", "documentation"],
    ["198.18.0.1", "reserved"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:169.254.169.254", "metadata"],
    ["::ffff:0:127.0.0.1", "loopback"],
    ["::127.0.0.1", "loopback"],
    ["64:ff9b::7f00:1", "loopback"],
    ["64:ff9b::a9fe:a9fe", "metadata"],
    ["2002:7f00:1::", "loopback"],
    ["2002:a00:1::1", "private"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fd00:ec2::254", "metadata"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "documentation"],
    ["2001::1", "reserved"],
    ["100::1", "reserved"],
    ["4000::1", "reserved"],
    ["[::1]", "loopback"],
  ])("%s is refused as %s", (address, reason) => {
    expect(classify(address)).toBe(reason);
  });

  it.each([
    "93.184.215.14",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "2002:808:808::1",
  ])("%s is public", (address) => {
    expect(classify(address)).toBeUndefined();
  });
});

describe("parsing", () => {
  it("reads IPv6 in its compressed, full and dotted forms alike", () => {
    const forms = ["::ffff:127.0.0.1", "0:0:0:0:0:ffff:7f00:1", "::FFFF:7F00:0001"];
    expect(new Set(forms.map((f) => formatIp(parseIp(f)!)))).toEqual(new Set(["::ffff:7f00:1"]));
    expect(formatIp(parseIp("2001:db8:0:0:1:0:0:1")!)).toBe("2001:db8::1:0:0:1");
    expect(formatIp(parseIp("::")!)).toBe("::");
  });

  it("rejects what is not an address", () => {
    for (const bad of ["localhost", "1.2.3", "256.1.1.1", "::g", "", "1.2.3.4/8"])
      expect(parseIp(bad)).toBeUndefined();
  });

  it("matches CIDR blocks, IPv4 blocks also for IPv4-mapped IPv6", () => {
    const block = parseCidr("127.0.0.0/8")!;
    expect(inCidr(parseIp("127.9.9.9")!, block)).toBe(true);
    expect(inCidr(parseIp("::ffff:127.0.0.1")!, block)).toBe(true);
    expect(inCidr(parseIp("128.0.0.1")!, block)).toBe(false);
    expect(inCidr(parseIp("fd00::1")!, parseCidr("fc00::/7")!)).toBe(true);
    expect(parseCidr("10.0.0.0/33")).toBeUndefined();
    expect(parseCidr("::1")?.prefix).toBe(128);
  });

  it("finds the IPv4 address inside NAT64 and 6to4 addresses", () => {
    expect(formatIp(embeddedIpv4(parseIp("64:ff9b::a00:1")!)!)).toBe("10.0.0.1");
    expect(formatIp(embeddedIpv4(parseIp("2002:c0a8:101::")!)!)).toBe("192.168.1.1");
    expect(embeddedIpv4(parseIp("2606:4700::1")!)).toBeUndefined();
  });
});
