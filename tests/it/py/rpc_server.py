"""Stock oslo.messaging RPCServer (threading executor) with a test endpoint
at version 1.3. Prints READY once consuming, CAST <json> for each `record`,
and stops when stdin closes.

usage: rpc_server.py URL EXCHANGE TOPIC SERVER
"""
import json
import sys

from oslo_config import cfg
import oslo_messaging as om

url, exchange, topic, server = sys.argv[1:5]


class ProbeError(Exception):
    pass


class Endpoint:
    target = om.Target(version="1.3")

    def ping(self, ctxt, value):
        return {"pong": value, "project_id": ctxt.get("project_id")}

    def record(self, ctxt, value):
        print("CAST " + json.dumps(value), flush=True)

    def fail(self, ctxt, kind):
        if kind == "value":
            raise ValueError("bad value")
        raise ProbeError("boom")


conf = cfg.CONF  # oslo.messaging registers its tracing options there
conf([])
transport = om.get_rpc_transport(conf, url=url)
target = om.Target(topic=topic, server=server, exchange=exchange)
srv = om.get_rpc_server(transport, target, [Endpoint()], executor="threading")
srv.start()
print("READY", flush=True)
sys.stdin.read()
srv.stop()
srv.wait()
transport.cleanup()
