/** What the `patchbay` command line reads for the shop (`--config examples/shop/patchbay.config.ts`). */
export { catalogue } from "./catalogue.js";
