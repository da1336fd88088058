import { ConfigError, loadConfig, loadEnvFile } from "./config.js";
import { runGateway } from "./run.js";

let config;
try {
  loadEnvFile();
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`liaison: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

await runGateway(config);
