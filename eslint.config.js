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
    files: ["src/adapters/**", "test/**", "bench/**"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
