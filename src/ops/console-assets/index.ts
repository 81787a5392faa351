/** The console's shipped assets, as strings: no files to locate at run time, no CDN, no build step. */
export { CONSOLE_PAGE } from "./page.js";
export { CONSOLE_SCRIPT } from "./script.js";
export { CONSOLE_STYLE } from "./style.js";
