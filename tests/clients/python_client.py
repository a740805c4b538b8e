"""An AI client as the official Python SDK (PyPI `mcp`) makes one: launching `switchboard serve`,
or connecting to the daemon's HTTP endpoint.

python_client.py SWITCHBOARD CONFIG_DIR MODE SCENARIO [TOOL ARGS_JSON]
python_client.py URL - MODE SCENARIO [TOOL ARGS_JSON]   (bearer token from $SWITCHBOARD_TOKEN)
  MODE      legacy (the initialize handshake) | auto (probes server/discover: 2026-07-28)
  SCENARIO  list-call: list every tool, call TOOL with ARGS_JSON, print one JSON line
            watch [TOOL]: list, print {"ready": names}, wait for the tool list to change (the
            session's notification, or a subscriptions/listen stream), list again and (with
            TOOL) call TOOL, print {"changed": names, "text": …, "is_error": …}
            repeat TOOL ARGS_JSON N: call TOOL N times, 100 ms apart, print {"n": i, "text": …,
            "is_error": …} after each
            offerings: list resources, resource templates and prompts, read the first resource,
            get the first prompt that needs no arguments, print {"resources": uris,
            "templates": …, "prompts": names, "read": [uri, text], "prompt": [name, messages]}
            progress TOOL ARGS_JSON: call TOOL asking for progress, print {"progress":
            [[progress, total, message], …] as they came, "text": …, "is_error": …}
            ask TOOL ARGS_JSON ANSWER: call TOOL as a client that answers every form question
            {"answer": ANSWER}, print {"questions": [message, …], "text": …, "is_error": …}
Everything it reports is on stdout, one JSON object per line.
"""

import asyncio
import json
import os
import sys
import time

import httpx2
from mcp import Client, StdioServerParameters, types
from mcp.client.streamable_http import streamable_http_client

switchboard, config_dir, mode, scenario = sys.argv[1:5]
changed = asyncio.Event()
questions = []


async def on_question(context, params):
    questions.append(params.message)
    return types.ElicitResult(action="accept", content={"answer": sys.argv[7]})


async def on_message(message):
    if getattr(message, "method", None) == "notifications/tools/list_changed":
        changed.set()


def say(**fields):
    print(json.dumps(fields), flush=True)


async def all_tools(client):
    names, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        names += [t.name for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            return names


async def main():
    if switchboard.startswith("http"):
        token = os.environ.get("SWITCHBOARD_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        target = streamable_http_client(switchboard, http_client=httpx2.AsyncClient(headers=headers))
    else:
        target = StdioServerParameters(command=switchboard, args=["--config-dir", config_dir, "serve"])
    started = time.monotonic()
    answering = {"elicitation_callback": on_question} if scenario == "ask" else {}
    async with Client(target, mode=mode, cache=None, message_handler=on_message,
                      **answering) as client:
        connected_ms = (time.monotonic() - started) * 1e3
        if scenario == "list-call":
            tool, arguments = sys.argv[5], json.loads(sys.argv[6])
            names = await all_tools(client)
            result = await client.call_tool(tool, arguments)
            text = " ".join(getattr(c, "text", "") for c in result.content)
            say(protocol=client.protocol_version, connected_ms=connected_ms, tools=names,
                text=text, is_error=bool(result.is_error))
        elif scenario == "watch":
            if mode == "legacy":
                say(ready=await all_tools(client))
                await asyncio.wait_for(changed.wait(), 30)
            else:
                async with client.listen(tools_list_changed=True) as events:
                    say(ready=await all_tools(client))
                    await asyncio.wait_for(events.__anext__(), 30)
            names = await all_tools(client)
            if len(sys.argv) > 5:
                result = await client.call_tool(sys.argv[5], {})
                text = " ".join(getattr(c, "text", "") for c in result.content)
                say(changed=names, text=text, is_error=bool(result.is_error))
            else:
                say(changed=names)
        elif scenario == "repeat":
            tool, arguments, times = sys.argv[5], json.loads(sys.argv[6]), int(sys.argv[7])
            for n in range(times):
                result = await client.call_tool(tool, arguments)
                text = " ".join(getattr(c, "text", "") for c in result.content)
                say(n=n, text=text, is_error=bool(result.is_error))
                await asyncio.sleep(0.1)
        elif scenario == "offerings":
            resources = (await client.list_resources()).resources
            templates = (await client.list_resource_templates()).resource_templates
            prompts = (await client.list_prompts()).prompts
            read = None
            if resources:
                first = resources[0]
                contents = (await client.read_resource(first.uri)).contents
                read = [str(contents[0].uri), getattr(contents[0], "text", None) or ""]
            got = None
            for prompt in prompts:
                if not any(a.required for a in (prompt.arguments or [])):
                    messages = (await client.get_prompt(prompt.name)).messages
                    got = [prompt.name, len(messages)]
                    break
            say(resources=[str(r.uri) for r in resources],
                templates=[t.uri_template for t in templates],
                prompts=[p.name for p in prompts], read=read, prompt=got)
        elif scenario == "progress":
            tool, arguments = sys.argv[5], json.loads(sys.argv[6])
            progress = []

            async def on_progress(done, total, message):
                progress.append([done, total, message])

            result = await client.call_tool(tool, arguments, progress_callback=on_progress)
            text = " ".join(getattr(c, "text", "") for c in result.content)
            say(progress=progress, text=text, is_error=bool(result.is_error))
        elif scenario == "ask":
            result = await client.call_tool(sys.argv[5], json.loads(sys.argv[6]))
            text = " ".join(getattr(c, "text", "") for c in result.content)
            say(questions=questions, text=text, is_error=bool(result.is_error))
        else:
            sys.exit(f"no scenario {scenario!r}")


asyncio.run(main())
