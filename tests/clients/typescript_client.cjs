// An AI client as the official TypeScript SDK (npm `@modelcontextprotocol/sdk`) makes one:
// launching `switchboard serve`, or connecting to the daemon's HTTP endpoint. Run with NODE_PATH
// at the SDK's node_modules.
//
// typescript_client.cjs SWITCHBOARD CONFIG_DIR SCENARIO [TOOL ARGS_JSON]
// typescript_client.cjs URL - SCENARIO [TOOL ARGS_JSON]   (bearer token from $SWITCHBOARD_TOKEN)
//   list-call: list every tool, call TOOL with ARGS_JSON, print one JSON line
//   watch [TOOL]: list, print {"ready": names}, wait for notifications/tools/list_changed,
//          list again and (with TOOL) call TOOL, print {"changed": names, "text", "is_error"}
//   cancel TOOL MS: call TOOL and abort the call after MS ms (the SDK sends
//          notifications/cancelled), print {"cancelled": bool, "ms": how long the call took},
//          then stay connected (for the test to see the server's side) until killed
//   progress TOOL ARGS_JSON: call TOOL asking for progress, print {"progress": [[progress,
//          total, message], …] as they came, "text", "is_error"}
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const { ToolListChangedNotificationSchema } = require("@modelcontextprotocol/sdk/types.js");

const [switchboard, configDir, scenario, tool, args] = process.argv.slice(2);
const say = (fields) => process.stdout.write(JSON.stringify(fields) + "\n");

async function allTools(client) {
  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  return names;
}

async function main() {
  const token = process.env.SWITCHBOARD_TOKEN;
  const transport = switchboard.startsWith("http")
    ? new StreamableHTTPClientTransport(new URL(switchboard), {
        requestInit: { headers: token ? { Authorization: `Bearer ${token}` } : {} },
      })
    : new StdioClientTransport({
        command: switchboard,
        args: ["--config-dir", configDir, "serve"],
        stderr: "inherit",
      });
  const client = new Client({ name: "typescript-test-client", version: "1.0.0" });
  let changed;
  const listChanged = new Promise((resolve) => (changed = resolve));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => changed());
  const started = Date.now();
  await client.connect(transport);
  const connectedMs = Date.now() - started;
  if (scenario === "list-call") {
    const tools = await allTools(client);
    const result = await client.callTool({ name: tool, arguments: JSON.parse(args) });
    const text = result.content.map((c) => c.text || "").join(" ");
    say({ server: client.getServerVersion().name, connected_ms: connectedMs, tools, text,
          is_error: !!result.isError });
  } else if (scenario === "watch") {
    say({ ready: await allTools(client) });
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error("no list_changed within 30 s")), 30000).unref());
    await Promise.race([listChanged, timeout]);
    const names = await allTools(client);
    if (tool) {
      const result = await client.callTool({ name: tool, arguments: {} });
      const text = result.content.map((c) => c.text || "").join(" ");
      say({ changed: names, text, is_error: !!result.isError });
    } else {
      say({ changed: names });
    }
  } else if (scenario === "progress") {
    const progress = [];
    const onprogress = (p) => progress.push([p.progress, p.total ?? null, p.message ?? null]);
    const result = await client.callTool({ name: tool, arguments: JSON.parse(args) }, undefined,
                                         { onprogress });
    const text = result.content.map((c) => c.text || "").join(" ");
    say({ progress, text, is_error: !!result.isError });
  } else if (scenario === "cancel") {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), Number(args)).unref();
    const started = Date.now();
    try {
      await client.callTool({ name: tool, arguments: {} }, undefined, { signal: controller.signal });
      say({ cancelled: false, ms: Date.now() - started });
    } catch (error) {
      say({ cancelled: controller.signal.aborted, ms: Date.now() - started, error: String(error) });
    }
    await new Promise((resolve) => setTimeout(resolve, 60000));
  } else {
    throw new Error(`no scenario ${scenario}`);
  }
  await client.close();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
