/**
 * The Node flags the gateway runs with in production: those of package.json's `start` script
 * (`node <flags> dist/server/main.js`). The Docker image's `CMD` repeats them; a unit test keeps the two equal.
 */
export function gatewayNodeFlags(startScript: string): string[] {
  const match = /(?:^|[\s;&|])node((?:\s+-[^\s]+)*)\s+dist\/server\/main\.js(?:\s|$)/.exec(startScript);
  if (!match) throw new Error(`the start script does not run "node [flags] dist/server/main.js": ${startScript}`);
  return (match[1] ?? "").split(/\s+/).filter((flag) => flag !== "");
}
