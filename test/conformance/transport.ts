/** The Transport conformance suite now ships in `patchbay/adapter`; re-exported for the tests here. */
export * from "../../src/adapter/conformance/transport.js";
