"""Checks that scripts/moto_server.py answers exactly as the stock
moto_server does: the same DynamoDB scenario (cancelled and committed
transactions over range and hash-only tables, stream records, queries of
partitions and indexes with pages and directions, scans, gets and
updates of binary and nested values) is run against
both servers, and every answer must be the same.

Then the two guarantees scripts/moto_transactions.py adds, which stock moto
lacks, are checked on the launcher alone, as DynamoDB documents them: a
transaction sent again with its ClientRequestToken writes nothing again,
and transactions cancelled side by side with committed ones undo nothing
of theirs.

Usage: python scripts/moto_server_check.py   (the venv's Python)
"""

import os
import socket
import subprocess
import sys
import threading
import time

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command):
    port = free_port()
    process = subprocess.Popen(
        command + ["-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            if time.time() > deadline:
                raise SystemExit(f"{command} did not answer on port {port}")
            time.sleep(0.1)


def scenario(port):
    """Every answer the scenario gets, in order."""
    url = f"http://127.0.0.1:{port}"
    d = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    streams = boto3.client("dynamodbstreams", endpoint_url=url, region_name="us-east-1")
    S = lambda v: {"S": v}  # noqa: E731
    answers = []

    def rows(table):
        items = d.scan(TableName=table)["Items"]
        return sorted(tuple(sorted((k, str(v)) for k, v in i.items())) for i in items)

    d.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g")],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        GlobalSecondaryIndexes=[{
            "IndexName": "by-g",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )
    d.create_table(
        TableName="h",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for p in "abc":
        for k in "3142":
            d.put_item(TableName="t", Item={"pk": S(p), "sk": S(k), "g": S("G" + k), "v": {"N": "1"}})
    d.put_item(TableName="h", Item={"pk": S("x"), "v": {"N": "1"}})
    update = lambda table, key, v: {"Update": {  # noqa: E731
        "TableName": table, "Key": key, "UpdateExpression": "SET v = :v",
        "ExpressionAttributeValues": {":v": {"N": v}}}}
    d.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": {"pk": S("d"), "sk": S("1"), "b": {"B": b"\x1f\x8b\x00"}}}},
        update("t", {"pk": S("a"), "sk": S("1")}, "2"),
    ])
    try:
        d.transact_write_items(TransactItems=[
            update("t", {"pk": S("a"), "sk": S("1")}, "3"),
            {"Put": {"TableName": "t", "Item": {"pk": S("e"), "sk": S("1")}}},
            {"Put": {"TableName": "t", "Item": {"pk": S("a"), "sk": S("9")}}},
            {"Delete": {"TableName": "t", "Key": {"pk": S("b"), "sk": S("2")}}},
            update("h", {"pk": S("x")}, "3"),
            {"Put": {"TableName": "t", "Item": {"pk": S("d"), "sk": S("1")},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
        answers.append("committed")
    except d.exceptions.TransactionCanceledException as e:
        answers.append(e.response["CancellationReasons"])
    answers += [rows("t"), rows("h")]
    d.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": {"pk": S("a"), "sk": S("5"), "g": S("G2")}}},
        {"Delete": {"TableName": "t", "Key": {"pk": S("c"), "sk": S("4")}}},
    ])
    answers.append(rows("t"))
    arn = d.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    answers.append([(r["eventName"], r["dynamodb"]["Keys"], r["dynamodb"].get("NewImage")) for r in records])
    queries = [
        dict(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("a")}, Limit=2),
        dict(KeyConditionExpression="pk = :p AND sk > :s", ExpressionAttributeValues={":p": S("a"), ":s": S("2")},
             ScanIndexForward=False),
        dict(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("zz")}),
        dict(IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": S("G2")}),
        dict(IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": S("G2")}, Limit=1),
    ]
    for query in queries:
        pages, start = [], None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            page = d.query(TableName="t", **query, **extra)
            pages.append((page["Items"], page.get("LastEvaluatedKey")))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        answers.append(pages)
    # Answers holding items, binary and nested values among them.
    strip = lambda r: {k: v for k, v in r.items() if k != "ResponseMetadata"}  # noqa: E731
    key = lambda p: {"pk": S(p), "sk": S("1")}  # noqa: E731
    answers.append(strip(d.get_item(TableName="t", Key=key("d"), ReturnConsumedCapacity="TOTAL")))
    answers.append(strip(d.get_item(TableName="t", Key=key("zz"), ConsistentRead=True)))
    got = d.batch_get_item(
        RequestItems={"t": {"Keys": [key(p) for p in "abdz"], "ConsistentRead": True}},
        ReturnConsumedCapacity="TOTAL",
    )
    answers.append((sorted(map(str, got["Responses"]["t"])), got.get("UnprocessedKeys"), got.get("ConsumedCapacity")))
    nested = {
        ":m": {"M": {"x": {"B": b"\x00\x01"}, "n": {"N": "2.50"}}},
        ":l": {"L": [{"BOOL": True}, {"NULL": True}, {"SS": ["a", "b"]}, {"BS": [b"\x02"]}]},
    }
    answers.append(strip(d.update_item(
        TableName="t", Key=key("a"), UpdateExpression="SET m = :m, l = :l",
        ExpressionAttributeValues=nested, ReturnValues="ALL_NEW")))
    answers.append(strip(d.put_item(
        TableName="t", Item={**key("a"), "b": {"B": b"\xff"}}, ReturnValues="ALL_OLD")))
    answers.append(strip(d.query(
        TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("a")},
        ReturnConsumedCapacity="TOTAL", Select="COUNT")))
    answers.append(strip(d.scan(TableName="h", Limit=1)))
    # One condition sent again with other values (the parse is kept by its
    # text, names and values), held and failed; an item over the size limit.
    for want, have in (("1", "1"), ("1", "2"), ("1", "3"), ("2", "3")):
        try:
            d.put_item(
                TableName="h", Item={"pk": S("c"), "v": {"N": have}},
                ConditionExpression="attribute_not_exists(pk) OR #v = :v",
                ExpressionAttributeNames={"#v": "v"}, ExpressionAttributeValues={":v": {"N": want}})
            answers.append(("put", want, have))
        except d.exceptions.ConditionalCheckFailedException:
            answers.append(("refused", want, have))
    try:
        d.put_item(TableName="h", Item={"pk": S("big"), "v": S("x" * 405_000)})
        answers.append("big put")
    except d.exceptions.ClientError as e:
        answers.append(e.response["Error"]["Code"])
    answers.append(rows("h"))
    return answers


def transactions(port):
    """What DynamoDB guarantees of transactions and stock moto does not: the
    failures found, none when the launcher keeps them."""
    url = f"http://127.0.0.1:{port}"
    d = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    S = lambda v: {"S": v}  # noqa: E731
    d.create_table(
        TableName="x",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    add = lambda pk: {"Update": {  # noqa: E731
        "TableName": "x", "Key": {"pk": S(pk)}, "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}}}}
    count = lambda pk: int(d.get_item(TableName="x", Key={"pk": S(pk)}, ConsistentRead=True)  # noqa: E731
                           .get("Item", {}).get("n", {"N": "0"})["N"])
    failures = []
    for _ in range(2):
        d.transact_write_items(TransactItems=[add("token")], ClientRequestToken="t-1")
    if count("token") != 1:
        failures.append(f"a transaction sent twice with its token counted {count('token')} times")
    try:
        d.transact_write_items(TransactItems=[add("other")], ClientRequestToken="t-1")
        failures.append("the token of another transaction was taken")
    except d.exceptions.IdempotentParameterMismatchException:
        pass
    for _ in range(2):
        d.transact_write_items(TransactItems=[add("no-token")], ClientRequestToken=f"t-{time.time()}")
    if count("no-token") != 2:
        failures.append(f"two transactions with their own tokens counted {count('no-token')} times")
    # One thread commits increments of an item while another's transactions
    # touch it and are cancelled: no increment may be undone.
    rounds = 150
    fail = {"ConditionCheck": {"TableName": "x", "Key": {"pk": S("absent")},
                               "ConditionExpression": "attribute_exists(pk)"}}
    def commit():
        for _ in range(rounds):
            d.transact_write_items(TransactItems=[add("shared")])
    def cancel():
        for _ in range(rounds):
            try:
                d.transact_write_items(TransactItems=[add("shared"), add("mine"), fail])
            except d.exceptions.TransactionCanceledException:
                pass
    threads = [threading.Thread(target=commit), threading.Thread(target=cancel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if count("shared") != rounds:
        failures.append(f"{rounds} committed increments beside cancelled transactions left {count('shared')}")
    return failures


def main():
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    bin_dir = os.path.dirname(sys.executable)
    servers = [
        start([os.path.join(bin_dir, "moto_server")]),
        start([sys.executable, os.path.join(HERE, "moto_server.py")]),
    ]
    try:
        stock, patched = (scenario(port) for _, port in servers)
    finally:
        for process, _ in servers:
            process.terminate()
    for n, (a, b) in enumerate(zip(stock, patched)):
        if a != b:
            raise SystemExit(f"moto_server.py differs from moto_server at answer {n}:\n{a}\n!=\n{b}")
    if len(stock) != len(patched) or len(stock) < 10:
        raise SystemExit("the scenario did not run through")
    print(f"moto_server.py: the same {len(stock)} answers as moto_server")
    process, port = start([sys.executable, os.path.join(HERE, "moto_server.py")])
    try:
        failures = transactions(port)
    finally:
        process.terminate()
    if failures:
        raise SystemExit("moto_server.py breaks DynamoDB's transactions:\n" + "\n".join(failures))
    print("moto_server.py: transactions isolated, ClientRequestToken honoured")


if __name__ == "__main__":
    main()
