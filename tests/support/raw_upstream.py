"""An upstream that speaks just enough MCP (raw JSON-RPC on stdio, no SDK) to be connected, then answers
tool calls badly: `garbage` writes lines that are not JSON-RPC, an answer to no request and an answer
whose result is not a tool result; `truncated` writes half a message and exits."""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "garbage"


def send(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    message = json.loads(line)
    method, ident = message.get("method"), message.get("id")
    if method == "initialize":
        send(json.dumps({"jsonrpc": "2.0", "id": ident, "result": {
            "protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw", "version": "1"}}}))
    elif method == "tools/list":
        send(json.dumps({"jsonrpc": "2.0", "id": ident, "result": {"tools": [
            {"name": "lookup", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}]}}))
    elif method == "tools/call" and mode == "garbage":
        send("this is not JSON-RPC")
        send(json.dumps({"jsonrpc": "2.0", "id": "no-such-request", "result": {"content": []}}))
        send(json.dumps({"jsonrpc": "2.0", "id": ident, "result": "not a tool result"}))
    elif method == "tools/call":
        sys.stdout.write('{"jsonrpc": "2.0", "id": ')
        sys.stdout.flush()
        sys.exit(1)
    elif ident is not None:
        send(json.dumps({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "not here"}}))
