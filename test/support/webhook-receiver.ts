/** The webhook receiver ships with the webhooks conformance suite; re-exported for the tests here. */
export * from "../../src/adapter/conformance/webhook-receiver.js";
