"""Sums a Bazel --remote_grpc_log file: calls per gRPC method, and the bytes that ByteStream
reads downloaded and ByteStream writes uploaded (with the largest blobs of each).

    python3 e2e/remote/grpc_log_bytes.py FILE...

The log is a stream of varint-delimited LogEntry messages (Bazel's
src/main/protobuf/remote_execution_log.proto); decoded here from the wire format, with no
generated code: LogEntry.method_name = 3, .details = 4; RpcCallDetails.read = 5 (ReadDetails:
request = 1 (ReadRequest.resource_name = 1), bytes_read = 3), .write = 6 (WriteDetails:
resource_names = 1, bytes_sent = 3).
"""
import collections
import sys


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    i, out = 0, []
    while i < len(b):
        key, i = varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((field, v))
    return out


def summarize(path):
    data = open(path, "rb").read()
    calls = collections.Counter()
    reads, writes = [], []
    i = 0
    while i < len(data):
        n, i = varint(data, i)
        entry = dict(fields(data[i:i + n]))
        i += n
        calls[entry.get(3, b"").decode()] += 1
        details = dict(fields(entry.get(4, b"")))
        if 5 in details:
            d = dict(fields(details[5]))
            name = dict(fields(d.get(1, b""))).get(1, b"").decode()
            reads.append((d.get(3, 0), name))
        if 6 in details:
            d = fields(details[6])
            names = [v.decode() for f, v in d if f == 1]
            writes.append((dict(d).get(3, 0), names[0] if names else ""))
    print(f"== {path}")
    for method, count in sorted(calls.items()):
        print(f"  {count:5d} {method}")
    print(f"  downloaded (ByteStream Read): {sum(s for s, _ in reads)} bytes in {len(reads)} reads")
    print(f"  uploaded (ByteStream Write): {sum(s for s, _ in writes)} bytes in {len(writes)} writes")
    for size, name in sorted(reads, reverse=True)[:5]:
        print(f"    read  {size:10d} {name}")
    for size, name in sorted(writes, reverse=True)[:5]:
        print(f"    write {size:10d} {name}")


for p in sys.argv[1:]:
    summarize(p)
