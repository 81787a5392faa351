import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpConnector, type ConnectRequest } from "./connector.js";

const servers: Array<http.Server | https.Server> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function listen<S extends http.Server | https.Server>(server: S): Promise<number> {
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

const request = (url: string, extra: Partial<ConnectRequest> = {}): ConnectRequest => ({
  url: new URL(url),
  address: "127.0.0.1",
  family: 4,
  headers: { "content-type": "application/json" },
  body: Buffer.from('{"a":1}'),
  signal: new AbortController().signal,
  maxResponseBytes: 16,
  ...extra,
});

describe("http connector (loopback only)", () => {
  it("connects to the checked address, never resolving the host name, and keeps it in Host", async () => {
    let host: string | undefined;
    let body = "";
    const port = await listen(
      http.createServer((req, res) => {
        host = req.headers.host;
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => res.writeHead(201, { "x-a": "b" }).end("0123456789abcdefghijklmnop"));
      }),
    );
    const connector = createHttpConnector();
    // "pinned.invalid" cannot resolve: a request that arrives proves the socket used our address.
    const res = await connector.send(request(`http://pinned.invalid:${port}/in?x=1`));
    connector.close();
    expect(res.status).toBe(201);
    expect(res.headers["x-a"]).toBe("b");
    expect(res.body).toBe("0123456789abcdef"); // cut at maxResponseBytes
    expect(host).toBe(`pinned.invalid:${port}`);
    expect(body).toBe('{"a":1}');
  });

  it("reuses keep-alive connections", async () => {
    const sockets = new Set<unknown>();
    const port = await listen(
      http.createServer((req, res) => {
        sockets.add(req.socket);
        req.resume();
        req.on("end", () => res.end("ok"));
      }),
    );
    const connector = createHttpConnector();
    for (let i = 0; i < 5; i++) await connector.send(request(`http://127.0.0.1:${port}/`));
    connector.close();
    expect(sockets.size).toBe(1);
  });

  it("does not follow redirects", async () => {
    const port = await listen(
      http.createServer((_req, res) => res.writeHead(302, { location: "http://127.0.0.2/" }).end()),
    );
    const connector = createHttpConnector();
    const res = await connector.send(request(`http://127.0.0.1:${port}/`));
    connector.close();
    expect(res).toMatchObject({ status: 302, headers: { location: "http://127.0.0.2/" } });
  });

  it("reports a refused connection as a retryable network error", async () => {
    const port = await listen(http.createServer());
    servers[0]!.close();
    servers.length = 0;
    const connector = createHttpConnector();
    await expect(connector.send(request(`http://127.0.0.1:${port}/`))).rejects.toMatchObject({
      code: "WEBHOOK_NETWORK",
      retryable: true,
    });
    connector.close();
  });

  it("aborts with the signal's reason", async () => {
    const port = await listen(http.createServer(() => undefined)); // never answers
    const connector = createHttpConnector();
    const controller = new AbortController();
    const pending = connector.send(request(`http://127.0.0.1:${port}/`, { signal: controller.signal }));
    setTimeout(() => controller.abort(new Error("time is up")), 20);
    await expect(pending).rejects.toThrow("time is up");
    connector.close();
  });

  it("over TLS keeps the host name for SNI and certificate checks while connecting to the checked address", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-tls-"));
    try {
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=hooks.test",
          "-addext",
          "subjectAltName=DNS:hooks.test",
          "-keyout",
          join(dir, "key.pem"),
          "-out",
          join(dir, "cert.pem"),
        ],
        { stdio: "ignore" },
      );
      const cert = readFileSync(join(dir, "cert.pem"));
      let servername: string | false | null | undefined;
      const port = await listen(
        https.createServer({ key: readFileSync(join(dir, "key.pem")), cert }, (req, res) => {
          servername = (req.socket as TLSSocket).servername;
          req.resume();
          req.on("end", () => res.end("secure"));
        }),
      );
      const connector = createHttpConnector({ ca: cert });
      const res = await connector.send(request(`https://hooks.test:${port}/in`));
      expect(res).toMatchObject({ status: 200, body: "secure" });
      expect(servername).toBe("hooks.test");
      // A name the certificate does not cover is refused, even on the same address.
      await expect(connector.send(request(`https://other.test:${port}/in`))).rejects.toMatchObject({
        code: "WEBHOOK_NETWORK",
      });
      connector.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
