/**
 * Where the real services are, and whether this run may use them. Probed once per run by
 * `test/global-setup.ts`; suites read the result with `inject("services")`.
 */
export interface ServiceStatus {
  name: string;
  url: string;
  /** Location without credentials, for printing. */
  where: string;
  reachable: boolean;
  error?: string;
}

export interface Services {
  postgres: ServiceStatus;
  mysql: ServiceStatus;
  rabbitmq: ServiceStatus;
  nats: ServiceStatus;
}

declare module "vitest" {
  export interface ProvidedContext {
    services: Services;
  }
}

/** The PostgreSQL URL tests use: `PATCHBAY_PG_URL`, default the local trust-auth server's `test` database. */
export function postgresUrl(): string {
  return process.env.PATCHBAY_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
}

/** The MariaDB/MySQL URL tests use: `PATCHBAY_MYSQL_URL`, default the local root account's `test` database. */
export function mysqlUrl(): string {
  return process.env.PATCHBAY_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
}

/** The RabbitMQ URL tests use: `PATCHBAY_AMQP_URL`, default the local broker's guest account. */
export function amqpUrl(): string {
  return process.env.PATCHBAY_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
}

/** The NATS URL tests use: `PATCHBAY_NATS_URL`, default the local nats-server (JetStream on). */
export function natsUrl(): string {
  return process.env.PATCHBAY_NATS_URL ?? "nats://127.0.0.1:4222";
}

/** `host:port/db` without credentials. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port}${u.pathname}`;
  } catch {
    return "(unparseable url)";
  }
}
