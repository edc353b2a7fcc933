"""The raw baseline of the emulator the aws-storm benchmark runs on: a
conditional PutItem of a 1 KB item and a consistent GetItem of it, over
kept connections from several client threads, against scripts/moto_server.py
on loopback (a table with a stream, as the deployment's). What one call
costs moto here bounds how long any run of aws-storm can take.

Usage: python scripts/moto_baseline.py [THREADS] [PAIRS_PER_THREAD]   (the venv's Python)
"""

import http.client
import json
import os
import sys
import threading
import time

from moto_server_check import start

HERE = os.path.dirname(os.path.abspath(__file__))
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


def call(connection, target, body):
    headers = dict(HEADERS, **{"X-Amz-Target": "DynamoDB_20120810." + target})
    connection.request("POST", "/", json.dumps(body), headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise SystemExit(f"{target}: HTTP {answer.status}")


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    process, port = start([sys.executable, os.path.join(HERE, "moto_server.py")])
    try:
        call(http.client.HTTPConnection("127.0.0.1", port), "CreateTable", {
            "TableName": "raw",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        })
        blob = "x" * 900

        def work(t):
            connection = http.client.HTTPConnection("127.0.0.1", port)
            for i in range(pairs):
                key = {"pk": {"S": f"D#{t}-{i}"}, "sk": {"S": "D"}}
                call(connection, "PutItem", {"TableName": "raw", "Item": {**key, "r": {"S": blob}},
                                             "ConditionExpression": "attribute_not_exists(pk)"})
                call(connection, "GetItem", {"TableName": "raw", "Key": key, "ConsistentRead": True})

        started = time.time()
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.time() - started
        calls = threads * pairs * 2
        print(f"{calls} calls from {threads} threads in {elapsed:.1f} s: {calls / elapsed:.0f} calls/s, "
              f"{1000 * elapsed / calls:.2f} ms a call")
    finally:
        process.terminate()


if __name__ == "__main__":
    main()
