"""Parses Prometheus text (stdin) with the stock prometheus_client parser and
prints its samples as JSON: [[name, {labels}, value], …]. Fails on text the
parser rejects."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps(samples))
