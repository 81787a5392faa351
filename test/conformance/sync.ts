/** The sync conformance suite ships in `patchbay/adapter/conformance`; re-exported for the tests here. */
export * from "../../src/adapter/conformance/sync.js";
