import { buildWidget } from "../../clients/widget/build.js";

/** Vitest global setup: the gateway serves the widget from its build, so every run builds it first. */
export default async function setup(): Promise<void> {
  await buildWidget();
}
