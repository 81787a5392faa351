/**
 * Probes the real services once per test run, prints which suites run against what, and under
 * `CI=true` fails the run when a service is unreachable, so CI can never pass by skipping.
 */
import net from "node:net";
import type { TestProject } from "vitest/node";
import {
  amqpUrl,
  mysqlUrl,
  natsUrl,
  postgresUrl,
  redact,
  type ServiceStatus,
  type Services,
} from "./services.js";

function probeTcp(url: string, defaultPort: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let host: string;
    let port: number;
    try {
      const u = new URL(url);
      host = u.hostname || "127.0.0.1";
      port = Number(u.port) || defaultPort;
    } catch {
      resolve("unparseable URL");
      return;
    }
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve("timed out");
    });
    socket.once("error", (e) => resolve(e.message));
  });
}

async function probe(name: string, url: string, port: number): Promise<ServiceStatus> {
  const error = await probeTcp(url, port);
  return { name, url, where: redact(url), reachable: error === undefined, ...(error ? { error } : {}) };
}

export default async function setup(project: TestProject): Promise<void> {
  if (Number(process.versions.node.split(".")[0]) < 22) {
    throw new Error(
      `the tests run on Node.js 22 or newer; this is ${process.version}. Run them with \`npm test\`, which puts the project's Node 24 (the npm package node) first on the PATH.`,
    );
  }
  const services: Services = {
    postgres: await probe("PostgreSQL", postgresUrl(), 5432),
    mysql: await probe("MariaDB", mysqlUrl(), 3306),
    rabbitmq: await probe("RabbitMQ", amqpUrl(), 5672),
    nats: await probe("NATS", natsUrl(), 4222),
  };
  const all: ServiceStatus[] = [services.postgres, services.mysql, services.rabbitmq, services.nats];
  const lines = ["", `Node.js ${process.version} (${process.execPath})`, "", "Services for this run:"];
  lines.push("  SQLite      embedded, node:sqlite (temporary files) -> Store conformance on SQLite");
  for (const s of all) {
    lines.push(
      s.reachable
        ? `  ${s.name.padEnd(11)} ${s.where.padEnd(27)} -> suites run against it`
        : `  ${s.name.padEnd(11)} ${s.where.padEnd(27)} -> UNREACHABLE (${s.error}); ${
            process.env.CI === "true" ? "CI=true: failing the run" : "its suites are skipped"
          }`,
    );
  }
  console.log(lines.join("\n") + "\n");
  const down = all.filter((s) => !s.reachable);
  if (process.env.CI === "true" && down.length > 0) {
    throw new Error(
      `CI=true and unreachable: ${down.map((s) => `${s.name} at ${s.where}`).join(", ")}. ` +
        "Start it (see DEVELOPERS.md) or point the PATCHBAY_*_URL variables at a running one.",
    );
  }
  project.provide("services", services);
}
