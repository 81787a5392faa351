/**
 * The catalogue as an AsyncAPI 3.1 document: one message per event type (its payload the JSON
 * Schema of the current version, the CloudEvents attributes as headers), channels per transport,
 * a receive operation per consumer group, a send operation per webhook event. Patchbay's own
 * facts ride along as `x-patchbay-*` extensions, so a published document is also the input of
 * the breaking-change check.
 */
import type { Catalogue } from "./catalogue.js";
import { eventJsonSchema } from "./json-schema.js";

/** An AsyncAPI document as plain JSON. */
export type AsyncApiDocument = Record<string, unknown> & { asyncapi: string };

type Json = Record<string, unknown>;
const ref = (...path: string[]) => ({ $ref: `#/${path.map((p) => p.replaceAll("/", "~1")).join("/")}` });

/** The CloudEvents 1.0 context attributes of one event type (as in binary content mode). */
function cloudEventHeaders(type: string, version: number): Json {
  const text = { type: "string", minLength: 1 };
  return {
    type: "object",
    description:
      "CloudEvents 1.0 attributes. On the bus they travel in structured mode (the body is the whole " +
      "CloudEvent, application/cloudevents+json, with this message's payload as `data`).",
    required: ["specversion", "id", "source", "type"],
    properties: {
      specversion: { const: "1.0" },
      id: { ...text, description: "UUIDv7; consumers deduplicate by it (inbox)" },
      source: text,
      type: { const: type },
      dataversion: { const: version, description: "older versions are read through upcasters" },
      datacontenttype: { const: "application/json" },
      time: { type: "string", format: "date-time" },
      subject: text,
      traceparent: { type: "string", description: "W3C trace context" },
      tracestate: { type: "string" },
      correlationid: text,
      causationid: text,
    },
  };
}

const STANDARD_WEBHOOKS_HEADERS: Json = {
  type: "object",
  description: "Standard Webhooks signature headers (https://www.standardwebhooks.com)",
  required: ["webhook-id", "webhook-timestamp", "webhook-signature"],
  properties: {
    "webhook-id": { type: "string" },
    "webhook-timestamp": { type: "string", pattern: "^[0-9]+$" },
    "webhook-signature": { type: "string" },
  },
};

const key = (...parts: string[]) => parts.join(".");

const NATS_TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * The subject the NATS JetStream adapter publishes an event type on: `<prefix>.ev.<type>`, or
 * `<prefix>.ev._` for a type whose segments are not all plain tokens (the type travels in a header).
 */
export function natsSubject(prefix: string, type: string): string {
  const parts = type.split(".");
  return `${prefix}.ev.${parts.every((p) => NATS_TOKEN.test(p)) ? type : "_"}`;
}

/**
 * Exports the catalogue as an AsyncAPI 3.1.0 document (plain JSON: `JSON.stringify` it).
 * Throws `CONTRACT_SCHEMA_UNCONVERTIBLE` when a schema has no JSON Schema converter.
 *
 * @example writeFileSync("asyncapi.json", JSON.stringify(exportAsyncApi(catalogue), null, 2));
 */
export function exportAsyncApi(catalogue: Catalogue): AsyncApiDocument {
  const messages: Json = {};
  const webhookMessages: Json = {};
  const channels: Json = {};
  const operations: Json = {};
  const servers: Json = {};
  const { local, rabbitmq, nats } = catalogue.transports;
  const readers = (type: string) => catalogue.consumers.filter((c) => c.events.includes(type));

  for (const event of catalogue.events) {
    messages[event.type] = {
      name: event.type,
      title: `${event.type} v${event.version}`,
      ...(event.description ? { summary: event.description } : {}),
      contentType: "application/json",
      headers: cloudEventHeaders(event.type, event.version),
      payload: eventJsonSchema(catalogue, event),
      "x-patchbay-version": event.version,
      "x-patchbay-reads": [...event.versions],
    };
  }
  const messageRefs = (types: readonly string[]) =>
    Object.fromEntries(types.map((t) => [t, ref("components", "messages", t)]));

  /** Channels (one per event type) and receive operations (one per group and type) on a server. */
  const perType = (
    server: string,
    address: (type: string) => string,
    description: string,
    bindings?: (type: string) => Json,
  ) => {
    for (const event of catalogue.events) {
      const channel = key(server, event.type);
      channels[channel] = {
        address: address(event.type),
        description,
        servers: [ref("servers", server)],
        messages: messageRefs([event.type]),
        ...(bindings ? { bindings: bindings(event.type) } : {}),
      };
      operations[key(server, "publish", event.type)] = {
        action: "send",
        channel: ref("channels", channel),
        summary: `publish ${event.type}`,
      };
      for (const consumer of readers(event.type)) {
        operations[key(server, consumer.group, event.type)] = {
          action: "receive",
          channel: ref("channels", channel),
          summary: `consumer group ${consumer.group} reads ${event.type}`,
          ...(consumer.description ? { description: consumer.description } : {}),
          "x-patchbay-group": consumer.group,
        };
      }
    }
  };

  if (local) {
    const host = typeof local === "object" && local.host ? local.host : "localhost";
    servers.local = {
      host,
      protocol: "patchbay-store",
      description:
        "The store's own durable queue (SQLite or PostgreSQL): one queue per consumer group, rows routed by event type.",
    };
    perType("local", (t) => t, "local queue, routed by event type");
  }
  if (rabbitmq) {
    const prefix = rabbitmq.prefix ?? "patchbay";
    servers.rabbitmq = {
      host: rabbitmq.host ?? "localhost:5672",
      protocol: "amqp",
      protocolVersion: "0.9.1",
      description: `RabbitMQ: topic exchange ${prefix}, one quorum queue ${prefix}.group.<group> per consumer group`,
    };
    const exchange = { name: prefix, type: "topic", durable: true, autoDelete: false, vhost: "/" };
    perType(
      "rabbitmq",
      (t) => t,
      `routing key on the topic exchange ${prefix}`,
      () => ({
        amqp: { is: "routingKey", exchange, bindingVersion: "0.3.0" },
      }),
    );
    for (const consumer of catalogue.consumers) {
      const channel = key("rabbitmq", "group", consumer.group);
      channels[channel] = {
        address: `${prefix}.group.${consumer.group}`,
        description: `queue of consumer group ${consumer.group}, bound to ${prefix} by ${consumer.events.join(", ")}`,
        servers: [ref("servers", "rabbitmq")],
        messages: messageRefs(consumer.events),
        bindings: {
          amqp: {
            is: "queue",
            queue: {
              name: `${prefix}.group.${consumer.group}`,
              durable: true,
              exclusive: false,
              autoDelete: false,
              vhost: "/",
            },
            bindingVersion: "0.3.0",
          },
        },
      };
    }
  }
  if (nats) {
    const prefix = nats.prefix ?? "patchbay";
    servers.nats = {
      host: nats.host ?? "localhost:4222",
      protocol: "nats",
      description: `NATS JetStream: stream ${prefix} on ${prefix}.ev.> (one subject per event type), one durable pull consumer per group`,
    };
    perType(
      "nats",
      (t) => natsSubject(prefix, t),
      `JetStream subject in stream ${prefix}; each consumer group is a durable pull consumer`,
    );
  }
  if (catalogue.webhooks.length > 0) {
    servers.webhooks = {
      host: "subscriber.example",
      protocol: "https",
      description: "Each registered webhook endpoint: POST with a Standard Webhooks signature",
    };
    for (const type of catalogue.webhooks) {
      const name = key("webhook", type);
      webhookMessages[name] = {
        name,
        title: `${type} (webhook)`,
        contentType: "application/json",
        headers: STANDARD_WEBHOOKS_HEADERS,
        payload: {
          type: "object",
          required: ["type", "timestamp", "data"],
          properties: {
            type: { const: type },
            timestamp: { type: "string", format: "date-time" },
            data: ref("components", "messages", type, "payload"),
          },
        },
      };
      channels[name] = {
        address: null,
        description: `webhook endpoints subscribed to ${type} (the URL is each endpoint's)`,
        servers: [ref("servers", "webhooks")],
        messages: { [name]: ref("components", "messages", name) },
      };
      operations[name] = {
        action: "send",
        channel: ref("channels", name),
        summary: `deliver ${type} to webhook endpoints`,
        "x-patchbay-webhook": type,
      };
    }
  }

  return {
    asyncapi: "3.1.0",
    info: {
      title: catalogue.title,
      version: catalogue.version,
      ...(catalogue.description ? { description: catalogue.description } : {}),
    },
    defaultContentType: "application/json",
    servers,
    channels,
    operations,
    components: { messages: { ...messages, ...webhookMessages } },
    "x-patchbay-consumers": Object.fromEntries(catalogue.consumers.map((c) => [c.group, [...c.events]])),
  };
}
