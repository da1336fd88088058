// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";
import { importX } from "eslint-plugin-import-x";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";

/** Imports point one way: protocol <- core <- adapters/store/http/socket <- app.ts (STYLE.md). */
const layer = (patterns, message) => ({
  "no-restricted-imports": ["error", { patterns: [{ group: patterns, message }] }],
});

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "coverage/**", "bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Nothing imports in a circle, type imports included: a cycle is a layering mistake even when it compiles.
    files: ["**/*.ts"],
    plugins: { "import-x": importX },
    settings: { "import-x/resolver-next": [createTypeScriptImportResolver({ project: "tsconfig.json" })] },
    rules: { "import-x/no-cycle": ["error", { ignoreExternal: true }] },
  },
  {
    files: ["protocol/**/*.ts"],
    rules: layer(
      ["../server/**", "../clients/**", "socket.io*", "express", "ioredis", "pino"],
      "protocol/ imports only zod",
    ),
  },
  {
    files: ["server/core/**/*.ts"],
    rules: layer(
      ["../http/**", "../socket/**", "../store/**", "../adapters/**", "../app.js", "express", "socket.io", "ioredis"],
      "core/ is pure logic against interfaces",
    ),
  },
  {
    files: ["server/adapters/*/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              // A sibling folder is another adapter; `../contract.js` and `../http.js` are shared by all.
              regex:
                "^\\.\\./(?!contract\\.js$|http\\.js$)[^./]|^\\.\\./\\.\\./(app|config)\\.js$|^\\.\\./\\.\\./(socket|store)/",
              message:
                "an adapter imports the core, the adapter contract and shared helpers, never another adapter, the store or the composition root",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["clients/**/*.ts"],
    rules: layer(["**/server/**", "express", "socket.io"], "clients import only protocol/ and socket.io-client"),
  },
  { files: ["**/*.js"], ...tseslint.configs.disableTypeChecked },
);
