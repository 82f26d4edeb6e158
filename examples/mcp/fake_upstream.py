"""A fake business system as an MCP server (the official `mcp` package): a CRM or an ERP whose tools count
their calls and can be told to fail, to be slow, to crash or to answer garbage.

    python fake_upstream.py --name crm                      # stdio
    python fake_upstream.py --name erp --http --port 9001   # Streamable HTTP on 127.0.0.1:9001/mcp
    python fake_upstream.py --name erp --http --certfile server.crt --keyfile server.key   # https

State lives in the directory FAKE_UPSTREAM_STATE (default: a temporary one): <name>.calls.json counts the
calls per tool; <name>.control.json, read on every call, can say {"fail": true} (tools answer with
isError), {"delay": 0.5} (seconds), {"crash": true} (the process exits), {"garbage": true} (stdio: a
line that is not JSON-RPC, then the normal answer never comes).
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

parser = argparse.ArgumentParser()
parser.add_argument("--name", default="crm")
parser.add_argument("--http", action="store_true")
parser.add_argument("--port", type=int, default=9001)
parser.add_argument("--certfile", help="with --http: serve https with this certificate (PEM)")
parser.add_argument("--keyfile", help="with --certfile: its private key (PEM)")
args = parser.parse_args()

STATE = os.environ.get("FAKE_UPSTREAM_STATE") or tempfile.mkdtemp(prefix="fake-upstream-")
CALLS = os.path.join(STATE, f"{args.name}.calls.json")
CONTROL = os.path.join(STATE, f"{args.name}.control.json")

server = MCPServer(name=f"fake-{args.name}", version="1.0")
READ_ONLY = ToolAnnotations(read_only_hint=True)


def control():
    try:
        with open(CONTROL) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def bump(name):
    """Adds one to the count `name` in the calls file."""
    try:
        with open(CALLS) as f:
            counts = json.load(f)
    except (OSError, ValueError):
        counts = {}
    counts[name] = counts.get(name, 0) + 1
    with open(CALLS + ".tmp", "w") as f:
        json.dump(counts, f)
    os.replace(CALLS + ".tmp", CALLS)


async def counted(tool):
    """Counts a call of `tool`, then behaves as the control file says."""
    bump(tool)
    settings = control()
    if settings.get("crash"):
        os._exit(3)
    if settings.get("garbage") and not args.http:
        sys.stdout.write("this is not JSON-RPC\n")
        sys.stdout.flush()
        await asyncio.sleep(3600)
    if settings.get("delay"):
        await asyncio.sleep(float(settings["delay"]))
    if settings.get("fail"):
        raise RuntimeError(f"{args.name} is failing on purpose")


@server.tool(annotations=READ_ONLY)
async def search_customers(query: str, limit: int = 10) -> str:
    """Customers whose name contains the query."""
    await counted("search_customers")
    return json.dumps([{"id": i, "name": f"{query.title()} {i}", "source": args.name} for i in range(1, min(limit, 3) + 1)])


@server.tool(annotations=READ_ONLY)
async def get_product(sku: str) -> str:
    """One product of the catalogue."""
    await counted("get_product")
    return json.dumps({"sku": sku, "name": f"Product {sku}", "price": 9.99})


@server.tool(annotations=ToolAnnotations(idempotent_hint=True))
async def list_countries() -> str:
    """Reference data: the countries served."""
    await counted("list_countries")
    return json.dumps(["DE", "FR", "IT"])


@server.tool()
async def update_customer(id: int, name: str) -> str:
    """Renames a customer (a write: never cached)."""
    await counted("update_customer")
    return f"customer {id} renamed to {name}"


@server.tool(annotations=READ_ONLY)
async def my_accounts(user: str = "") -> str:
    """The accounts visible to the caller (cached per caller by the gateway's configuration)."""
    await counted("my_accounts")
    return json.dumps({"accounts": [f"{args.name}-account-{len(user)}"], "asked": user})


@server.tool(annotations=READ_ONLY)
async def slow_report(steps: int, ctx: Context, pause: float = 0.05) -> str:
    """A report that takes a while (`pause` seconds a step) and says how far it is."""
    await counted("slow_report")
    for step in range(steps):
        await ctx.report_progress(step + 1, steps, f"step {step + 1} of {steps}")
        await asyncio.sleep(pause)
    return f"report of {steps} steps"


@server.tool()
async def slow_write(seconds: float) -> str:
    """A write that takes `seconds` (never cached); counts `slow_write_cancelled` when it is cancelled."""
    await counted("slow_write")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        bump("slow_write_cancelled")
        raise
    return "written"


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Adds a read-only tool called `name` and tells the client the tool list changed."""
    await counted("add_tool")

    async def added(query: str = "") -> str:
        await counted(name)
        return f"{name} answered {query}"

    server.add_tool(added, name=name, description=f"added at run time as {name}", annotations=READ_ONLY)
    # notifications/tools/list_changed to this client (Context.notify_tools_changed only publishes to
    # subscriptions/listen subscribers).
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


@server.tool()
async def add_resource(name: str, ctx: Context) -> str:
    """Adds the resource fake://<upstream>/<name> and tells the client the resource list changed."""
    await counted("add_resource")
    uri = f"fake://{args.name}/{name}"

    def added() -> str:
        return json.dumps({"resource": name})

    server.resource(uri, name=name, mime_type="application/json")(added)
    await ctx.session.send_resource_list_changed()
    return f"added {uri}"


@server.resource("fake://{name}/status".replace("{name}", args.name), mime_type="application/json")
def status() -> str:
    return json.dumps({"upstream": args.name, "ok": True})


if __name__ == "__main__":
    if args.http and args.certfile:
        import uvicorn

        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=args.port, log_level="warning",
                    ssl_certfile=args.certfile, ssl_keyfile=args.keyfile)
    elif args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    else:
        server.run()
