"""Check that the speed-ups of moto_server.py change no answer.

The launcher replaces parts of moto for speed: the base-table Query (a partition
lookup instead of a whole-table sort, and no copy of the items a COUNT only counts)
and the encoding of item-carrying DynamoDB responses; its usage meter wraps Query too. This script runs the same requests against moto with and without each
replacement and exits non-zero if any response differs. The Go test
internal/localstack/testenv runs it.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto_server  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402
from moto.dynamodb.responses import DynamoHandler, DynamoResult  # noqa: E402
from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.test import Client  # noqa: E402

HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "Host": "dynamodb.us-east-1.amazonaws.com",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=x",
}
client = Client(DomainDispatcherApplication(create_backend_app))


def call(target, body):
    r = client.post("/", data=json.dumps(body), headers={**HEADERS, "X-Amz-Target": "DynamoDB_20120810." + target})
    return json.loads(r.data)


def setup():
    for name, typ in (("s", "S"), ("n", "N")):
        call("CreateTable", {
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": typ},
                                     {"AttributeName": "g", "AttributeType": "S"}],
            "GlobalSecondaryIndexes": [{"IndexName": "gi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "ALL"}}],
        })
    rnd = random.Random(1)
    for name, typ in (("s", "S"), ("n", "N")):
        for p in ("a", "b"):
            keys = rnd.sample(range(3000), 80)
            for k0 in range(0, len(keys), 25):
                items = [{"PutRequest": {"Item": {
                    "pk": {"S": p}, "sk": {typ: ("k%05d" % k) if typ == "S" else str(k - 1000)}, "g": {"S": "x"},
                    "body": {"S": "z" * rnd.randint(1, 30000)}}}} for k in keys[k0:k0 + 25]]
                call("BatchWriteItem", {"RequestItems": {name: items}})


def read_all(name, extra):
    start, pages = None, []
    while len(pages) < 1000:
        body = {"TableName": name, "KeyConditionExpression": "pk = :t", "ExpressionAttributeValues": {":t": {"S": "a"}}, **extra}
        if start:
            body["ExclusiveStartKey"] = start
        out = call("Query", body)
        pages.append(out)
        start = out.get("LastEvaluatedKey")
        if not start:
            break
    return pages


def check_query():
    original, differ, shapes = Table.query, 0, 0
    DynamoHandler.query = moto_server.count_aware(DynamoHandler.query)
    Table.put_item, Table.delete_item = moto_server._bump(Table.put_item), moto_server._bump(Table.delete_item)
    for name in ("s", "n"):
        after = {"S": "k01000"} if name == "s" else {"N": "0"}
        for extra in ({}, {"Limit": 7}, {"Limit": 80}, {"Limit": 81}, {"ScanIndexForward": False},
                      {"ScanIndexForward": False, "Limit": 13}, {"Select": "COUNT"}, {"Select": "COUNT", "Limit": 50}, {"Select": "COUNT", "Limit": 80},
                      {"Select": "COUNT", "FilterExpression": "size(body) > :l", "ExpressionAttributeValues": {":t": {"S": "a"}, ":l": {"N": "3000"}}},
                      {"FilterExpression": "size(body) > :l", "ExpressionAttributeValues": {":t": {"S": "a"}, ":l": {"N": "3000"}}, "Limit": 40},
                      {"ProjectionExpression": "sk", "Limit": 99},
                      {"KeyConditionExpression": "pk = :t AND sk > :k", "ExpressionAttributeValues": {":t": {"S": "a"}, ":k": after}, "Limit": 31},
                      {"IndexName": "gi", "KeyConditionExpression": "g = :t", "ExpressionAttributeValues": {":t": {"S": "x"}}, "Limit": 50}):
            Table.query = original
            want = read_all(name, extra)
            Table.query = moto_server.query
            got = read_all(name, extra)
            shapes += 1
            if want != got:
                differ += 1
                print(f"query {name} {extra}: {len(want)} pages from moto, {len(got)} patched", file=sys.stderr)
            # The usage meter (which reads a filtered or projected page again) changes
            # no answer either.
            Table.query = moto_server.metered_query(moto_server.query)
            moto_server._current.query = [0, 0]
            metered = read_all(name, extra)
            moto_server._current.query = None
            shapes += 1
            if want != metered:
                differ += 1
                print(f"query {name} {extra}: {len(want)} pages from moto, {len(metered)} metered", file=sys.stderr)
    # Writes between reads must show in the next read (the sorted-partition cache).
    for name, typ in (("s", "S"), ("n", "N")):
        key = {"S": "k99999"} if typ == "S" else {"N": "-99999"}
        extra = {"Limit": 9}
        Table.query = moto_server.query
        read_all(name, extra)
        call("PutItem", {"TableName": name, "Item": {"pk": {"S": "a"}, "sk": key, "g": {"S": "x"}}})
        call("DeleteItem", {"TableName": name, "Key": {"pk": {"S": "a"}, "sk": read_all(name, {"Limit": 1})[0]["Items"][0]["sk"]}})
        got = read_all(name, extra)
        Table.query = original
        want = read_all(name, extra)
        shapes += 1
        if want != got:
            differ += 1
            print(f"query {name} after writes: moto and the cached partition disagree", file=sys.stderr)
    Table.query = original
    return shapes, differ


def _headers(h):
    return {k: v for k, v in h.items() if k.lower() != "content-length"}


def check_encoding():
    item = {"pk": {"S": "t"}, "sk": {"S": "a"}, "b": {"B": "AAEC/w=="}, "bs": {"BS": ["AA==", "AQ=="]}, "n": {"N": "1.50"},
            "ns": {"NS": ["1", "2"]}, "ss": {"SS": ["x", "y"]}, "e": {"S": ""}, "u": {"S": "é\u2028\"<"},
            "m": {"M": {"x": {"L": [{"N": "1"}, {"NULL": True}, {"BOOL": False}, {"B": "AQ=="}]}}}}
    key = {"pk": {"S": "t"}, "sk": {"S": "a"}}
    requests = [
        ("PutItem", {"TableName": "s2", "Item": item, "ReturnValues": "ALL_OLD"}),
        ("PutItem", {"TableName": "s2", "Item": item, "ReturnValues": "ALL_OLD", "ReturnConsumedCapacity": "TOTAL"}),
        ("PutItem", {"TableName": "s2", "Item": {**item, "sk": {"S": "b"}}}),
        ("GetItem", {"TableName": "s2", "Key": key}),
        ("GetItem", {"TableName": "s2", "Key": {"pk": {"S": "t"}, "sk": {"S": "zz"}}}),
        ("Query", {"TableName": "s2", "KeyConditionExpression": "pk = :t", "ExpressionAttributeValues": {":t": {"S": "t"}}, "Limit": 1}),
        ("Query", {"TableName": "s2", "KeyConditionExpression": "pk = :t", "ExpressionAttributeValues": {":t": {"S": "t"}}, "Select": "COUNT"}),
        ("Scan", {"TableName": "s2", "ReturnConsumedCapacity": "INDEXES"}),
        ("BatchGetItem", {"RequestItems": {"s2": {"Keys": [key, {"pk": {"S": "t"}, "sk": {"S": "q"}}]}}}),
        ("UpdateItem", {"TableName": "s2", "Key": key, "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "ALL_NEW"}),
        ("BatchWriteItem", {"RequestItems": {"s2": [{"PutRequest": {"Item": {"pk": {"S": "t"}, "sk": {"S": "c"}}}}]}}),
        ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "s2", "Key": key}}]}),
        ("DeleteItem", {"TableName": "s2", "Key": {"pk": {"S": "t"}, "sk": {"S": "b"}}, "ReturnValues": "ALL_OLD"}),
        ("DescribeTable", {"TableName": "s2"}),
    ]
    call("CreateTable", {"TableName": "s2", "BillingMode": "PAY_PER_REQUEST",
                         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]})
    original, fast, seen, differ = DynamoResult.execute_result, moto_server.fast_items(DynamoResult.execute_result), [0], [0]

    def both(self, context):
        # Both encodings of the very same result: writes run once.
        want, got = original(self, context), fast(self, context)
        seen[0] += 1
        if want[0] != got[0] or json.loads(want[2]) != json.loads(got[2]) or _headers(want[1]) != _headers(got[1]):
            differ[0] += 1
            print(f"encoding of {context.operation_model.name}: {want} vs {got}", file=sys.stderr)
        return got

    DynamoResult.execute_result = both
    for target, body in requests:
        call(target, body)
    DynamoResult.execute_result = original
    return seen[0], differ[0]


def main():
    setup()
    shapes, qdiff = check_query()
    seen, ediff = check_encoding()
    print(f"{shapes} query shapes paged with and without the partition lookup: {qdiff} differ; "
          f"{seen} responses encoded both ways: {ediff} differ")
    sys.exit(1 if qdiff or ediff else 0)


if __name__ == "__main__":
    main()
