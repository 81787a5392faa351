import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // The shop imports `patchbay` as its users do; tests that import the shop resolve it to src.
  resolve: {
    alias: [{ find: /^patchbay$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) }],
  },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Three test files at a time on the 2-core CI machine: most suites wait on services, leases
    // and child processes rather than compute. Measured on the whole suite beside two helpers'
    // work (load 6-9): 2 workers 1058 s, 3 workers 923 s, all passing both times.
    maxWorkers: 3,
  },
});
