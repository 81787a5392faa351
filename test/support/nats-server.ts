/**
 * A nats-server of a test's own (JetStream on, a temporary store directory, a free port), to
 * kill and start again without touching the shared one on 4222.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NATS_SERVER = process.env.PATCHBAY_NATS_SERVER ?? "/usr/sbin/nats-server";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function listening(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host: "127.0.0.1", port });
      c.once("connect", () => (c.destroy(), resolve(true)));
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface OwnNatsServer {
  url: string;
  /** Kills the server (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store directory. */
  start(): Promise<void>;
  /** Kills it and removes its store directory. */
  cleanup(): Promise<void>;
}

export async function ownNatsServer(): Promise<OwnNatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "patchbay-nats-"));
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], {
      stdio: "ignore",
    });
    await listening(port, 15_000);
  };
  const kill = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    p.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    kill,
    start,
    async cleanup() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
