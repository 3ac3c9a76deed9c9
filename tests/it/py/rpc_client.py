"""Stock oslo.messaging RPCClient: runs the operations given as JSON and
prints one JSON outcome per operation (result, or exception class names).

usage: rpc_client.py URL EXCHANGE TOPIC OPS_JSON
"""
import json
import sys

from oslo_config import cfg
import oslo_messaging as om

url, exchange, topic, ops = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
conf = cfg.CONF  # oslo.messaging registers its tracing options there
conf([])
transport = om.get_rpc_transport(conf, url=url)
client = om.get_rpc_client(transport, om.Target(topic=topic, exchange=exchange))
ctxt = {"project_id": "p-probe", "user_id": "u-probe", "request_id": "req-probe", "roles": ["member"]}
out = []
for op in ops:
    prepared = client.prepare(
        version=op.get("version", "1.0"),
        timeout=op.get("timeout", 15),
        server=op.get("server"),
        fanout=op.get("fanout", False),
        namespace=op.get("namespace"),
        call_monitor_timeout=op.get("call_monitor_timeout"),
    )
    try:
        if op["kind"] == "call":
            out.append({"ok": prepared.call(ctxt, op["method"], **op.get("args", {}))})
        else:
            prepared.cast(ctxt, op["method"], **op.get("args", {}))
            out.append({"ok": None})
    except Exception as e:  # report what the stock client raised
        out.append({
            "exc": type(e).__name__,
            "module": type(e).__module__,
            "exc_type": getattr(e, "exc_type", None),
            "value": str(e)[:300],
        })
transport.cleanup()
print(json.dumps(out))
