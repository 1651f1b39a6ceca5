#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/seeds/<target>/ from the golden files of
persisted events (proto/tests/golden) and example request bodies. Run it again after adding an
event type, a golden file or a route; the seeds are committed, the grown corpus is not."""

import pathlib
import re
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "proto" / "tests" / "golden"
SEEDS = ROOT / "fuzz" / "seeds"

# The event families in the order fuzz_targets/common.rs lists them.
FAMILIES = [
    ("events.rs", "ConversationEvent"),
    ("events.rs", "CustomerEvent"),
    ("routing.rs", "DeskEvent"),
    ("routing.rs", "DirectoryEvent"),
    ("agent.rs", "AgentEvent"),
    ("ticket.rs", "TicketEvent"),
    ("access.rs", "AccessEvent"),
    ("audit.rs", "AuditEvent"),
]


def known_types():
    """Every (type, version) in the order of common::all_types: per family, current then legacy."""
    order = []
    for file, family in FAMILIES:
        source = (ROOT / "proto" / "src" / file).read_text()
        start = source.index(f"domain_event!({family} {{")
        block = source[start : source.index("});", start)]
        current, _, legacy = block.partition("legacy {")
        for part in (current, legacy):
            order += [(n, int(v)) for n, v in re.findall(r'=> "([a-z_.]+)" @ (\d+)', part)]
    return order


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def varint(self):
        first = self.take(1)[0]
        width = {251: 2, 252: 4, 253: 8, 254: 16}.get(first)
        return first if width is None else int.from_bytes(self.take(width), "little")

    def string(self):
        return self.take(self.varint()).decode()

    def option_string(self):
        return self.string() if self.take(1)[0] else None


def envelope_payload(data):
    """(event_type, schema_version, payload) of an encoded envelope."""
    r = Reader(data)
    r.take(1)  # codec
    event_type = r.string()
    version = r.varint()
    r.string()  # stream
    r.varint(), r.varint(), r.varint()  # seq, timestamp, event id
    for _ in range(3):
        r.option_string()
    payload = r.take(r.varint())
    assert r.at == len(data), "the whole envelope was read"
    return event_type, version, payload


def reset(target):
    path = SEEDS / target
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def main():
    order = known_types()
    envelope_dir, codec_dir = reset("envelope"), reset("codec")
    for golden in sorted(GOLDEN.glob("*.hex")):
        data = bytes.fromhex("".join(golden.read_text().split()))
        (envelope_dir / golden.stem).write_bytes(data)
        event_type, version, payload = envelope_payload(data)
        selector = order.index((event_type, version))
        (codec_dir / golden.stem).write_bytes(bytes([selector]) + payload)

    message = '{"channel":"web","customer":"c-1","id":"m-2","text":"你好，订单 #A1024 还没到"}'
    api_dir = reset("api_json")
    (api_dir / "message").write_text(message)
    (api_dir / "message_unknown_field").write_text(message[:-1] + ',"extra":1}')

    # One body per route, in the order of the routes in fuzz_targets/http_bodies.rs.
    bodies = [
        '{"role":"agent","agent":"agent-2","name":"seat 2"}',
        '{"agent":"agent-1","password":"correct horse battery"}',
        message,
        '{"agent":"agent-1","id":"a-1","text":"on it","internal":false}',
        '{"reason":"customer asked","group":"general"}',
        '{"agent":"agent-1","group":"general","by":"agent-1","take_over":true}',
        '{"supervisor":"agent-1"}',
        '{"agent":"agent-1"}',
        '{"score":5,"comment":"great"}',
        '{"status":"online","groups":["general"],"capacity":3,"languages":["zh"]}',
        "",
        "",
        '{"tier":"vip"}',
        '{"overflow_to":"general","overflow_after_s":60,"max_waiting":10,"offer_timeout_s":30}',
        '{"routes":{"refund_request":"general"},"default_group":"general"}',
        '{"kind":"refund","subject":"s","customer":"c-1","sla":{"first_response_s":60,"resolution_s":3600}}',
        '{"status":"pending","assignee":"agent-1","comment":{"author":"agent-1","text":"t","public":false}}',
    ]
    http_dir = reset("http_bodies")
    for selector, body in enumerate(bodies):
        (http_dir / f"route{selector:02}").write_bytes(bytes([selector]) + body.encode())
    print(f"seeds: {len(order)} event types, {len(bodies)} routes")


if __name__ == "__main__":
    main()
