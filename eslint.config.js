// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".patchbay/", "coverage/", ".docs-check/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-imports": [
        "error",
        {
          paths: [
            "pg",
            "node:sqlite",
            "amqplib",
            "@nats-io/transport-node",
            "@nats-io/jetstream",
            "mysql2",
            "mysql2/promise",
            "pg-copy-streams",
          ].map((name) => ({
            name,
            message: "Drivers are imported only inside src/adapters/<tech>/ (DESIGN.md).",
          })),
        },
      ],
    },
  },
  {
    files: ["test/**", "bench/**"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // Drivers are optional peer dependencies: an entry point must load without them, and the
    // published types must not name theirs. Each adapter imports its driver with `await import()`
    // in its load.ts, on first connect (src/adapters/load-driver.ts); node:sqlite is built in.
    files: ["src/adapters/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["pg", "pg-copy-streams", "amqplib", "mysql2", "mysql2/*", "@nats-io/*"],
              message:
                "Import a driver lazily (`await import()` in the adapter's load.ts) and type it structurally, never statically (DESIGN.md).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
