/** Prints `.env.example` (npm run env:example). */
import { renderEnvExample } from "./config.js";

process.stdout.write(renderEnvExample());
