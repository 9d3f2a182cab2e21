// Manages a key through the native API with the client generated from openapi/openapi.json
// (openapi-typescript types + openapi-fetch), then reads which credential the user's calls use.
// Run by scripts/clients with LLM_SETTINGS_URL and USER_TOKEN (scopes `read write`) set.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Config = components["schemas"]["LlmSettingsResponse"];

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`unexpected answer: ${what}`);
  console.log(`  ok: ${what}`);
}

const client = createClient<paths>({
  baseUrl: env("LLM_SETTINGS_URL"),
  headers: { Authorization: `Bearer ${env("USER_TOKEN")}` },
});

// Store a key: the answer carries its last four characters, never the key.
const created = await client.POST("/users/me/llm-settings", {
  body: { provider: "openai", api_key: "sk-example-typescript-1234", model: "gpt-4o-mini" },
});
if (!created.data) throw new Error(`create failed: ${JSON.stringify(created.error)}`);
const config: Config = created.data;
check(config.api_key_last_4 === "1234" && config.is_default, "key stored, masked, default");

// Change the model, sending the version read so a concurrent change is refused with 409.
const updated = await client.PATCH("/users/me/llm-settings/{config_id}", {
  params: { path: { config_id: config.id } },
  body: { model: "gpt-4o", version: config.version },
});
check(updated.data?.model === "gpt-4o", "model changed");

const stale = await client.PATCH("/users/me/llm-settings/{config_id}", {
  params: { path: { config_id: config.id } },
  body: { model: "gpt-4.1", version: config.version },
});
check(stale.response.status === 409 && stale.error?.error_code === "conflict", "stale update refused");

// What the user's calls would use: their own key.
const effective = await client.GET("/users/me/llm-settings/effective", {});
check(effective.data?.source.owner === "user" && effective.data.model === "gpt-4o", "effective: own key");

// Errors come back typed in the surface's shape.
const missing = await client.GET("/users/me/llm-settings/{config_id}", {
  params: { path: { config_id: config.id + 1000 } },
});
check(missing.response.status === 404 && missing.error?.error_code === "not_found", "unknown config is 404");

const removed = await client.DELETE("/users/me/llm-settings/{config_id}", {
  params: { path: { config_id: config.id } },
});
check(removed.response.status === 204, "config deleted");
const listed = await client.GET("/users/me/llm-settings");
check(listed.data?.configs.length === 0, "no config left");
console.log("TypeScript example: all checks passed");
