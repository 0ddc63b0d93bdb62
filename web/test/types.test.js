import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const web = fileURLToPath(new URL("..", import.meta.url));

test("the type declarations compile against their use in test/types.ts", async () => {
  const { code, output } = await new Promise((resolve) => {
    execFile("node_modules/.bin/tsc", ["-p", "tsconfig.json"], { cwd: web }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
  assert.equal(code, 0, output);
});
