"""Run moto's server single-threaded on HOST PORT.

moto_server serves requests on threads, and DynamoDB condition checks in moto are not
atomic across threads. The project's race test (32 writers, one winner) is the judge, so
requests are served one at a time, the way DynamoDB serialises writes to one item.

moto makes TransactWriteItems all-or-nothing by deep-copying every table it touches
before each transaction, which costs time in proportion to the table's size (measured:
200 ms per transaction at a few thousand items, seconds at 10,000 tenants). This
launcher keeps the same all-or-nothing behaviour by saving only the items a
transaction targets and putting them back when it is cancelled. For the same reason a
base-table Query looks up its partition instead of sorting the whole table (see query).

With TENANTFLOW_MOTO_ADMIN set (and INITIAL_NO_AUTH_ACTION_COUNT=0), every request must
be signed by an IAM user and is checked against that user's policies, with the actions
and resources AWS checks (see "IAM enforcement" below). The admin user and the users
listed in TENANTFLOW_MOTO_USERS are created before the first request.
"""
import base64
import bisect
import copy
import json
import operator
import os
import sys
import threading

from moto.dynamodb.comparisons import OpDefault
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_transact_write_items = DynamoDBBackend.transact_write_items


def _target_key(backend, op_type, op):
    table = backend.get_table(op["TableName"])
    if op_type != "Put":
        return op["Key"]
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def transact_write_items(self, transact_items):
    saved = []
    for entry in transact_items:
        for op_type, op in entry.items():
            name = op.get("TableName")
            if name not in self.tables:
                continue
            try:
                key = _target_key(self, op_type, op)
                current = self.get_item(name, key)
            except Exception:  # noqa: BLE001 - moto reports the problem itself below
                continue
            saved.append((name, key, None if current is None else copy.deepcopy(current.to_json()["Attributes"])))
    # moto's own backup becomes free: a table "copy" is the table itself ...
    Table.__deepcopy__ = lambda table, memo: table
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        # ... and a cancelled transaction gets its targets back, newest first.
        for name, key, attrs in reversed(saved):
            if attrs is None:
                if self.get_item(name, key) is not None:
                    self.delete_item(name, key)
            else:
                self.put_item(name, attrs)
        raise
    finally:
        del Table.__deepcopy__


# ---------------------------------------------------------------------------------------
# IAM enforcement.
#
# With INITIAL_NO_AUTH_ACTION_COUNT set (the local stack sets it to 0), moto checks the
# SigV4 signature of every request and evaluates the caller's IAM policies. Out of the
# box it does so with the resource "*" for DynamoDB, EventBridge and Secrets Manager, so
# a policy naming a table, a bus or a secret could never allow anything, and it checks
# TransactWriteItems as one action although IAM authorises each element as its own item
# action. The code below gives those services the resource ARNs and actions IAM uses,
# accepts S3 presigned URLs (moto only knows the Authorization header), writes denials
# the way AWS does (action and resource in the message), and caches each decision per
# principal, action and resource until the next IAM request.

ADMIN_ENV = "TENANTFLOW_MOTO_ADMIN"  # "<access key id>:<secret key>"
USERS_ENV = "TENANTFLOW_MOTO_USERS"  # a JSON file: [{name, credentials, inline, managed}]
ADMIN_USER = "devstack-admin"

# (principal ARN, action, resource) -> None (allowed), "implicit" or "explicit" denial.
_verdicts: dict = {}


def _partition(region):
    from moto.utilities.utils import get_partition

    return get_partition(region)


def _denial_message(principal, action, resource, kind):
    if kind == "explicit":
        why = "with an explicit deny in an identity-based policy"
    else:
        why = f"because no identity-based policy allows the {action} action"
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"


def _deny(iam_request, resource, kind):
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.s3.exceptions import S3ClientError

    msg = _denial_message(iam_request._access_key.arn, iam_request._action, resource, kind)
    service = iam_request._service
    if service == "s3":
        err = S3ClientError("AccessDenied", msg)
        raise err
    if service in ("iam", "sts", "ec2"):
        err = AccessDeniedError(user_arn=iam_request._access_key.arn, action=iam_request._action)
        err.message = msg
        raise err
    # The JSON protocol services answer 400 AccessDeniedException, as AWS does.
    raise JsonRESTError("AccessDeniedException", msg)


def _evaluate(iam_request, resource):
    from moto.iam.access_control import IAMPolicy, PermissionResult

    permitted = False
    for policy in iam_request._access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(iam_request._action, resource)
        if result == PermissionResult.DENIED:
            return "explicit"
        if result == PermissionResult.PERMITTED:
            permitted = True
    return None if permitted else "implicit"


def check_action_permitted(self, resource):
    if self._action == "sts:GetCallerIdentity" or ":role" in resource.lower():
        return _check_action_permitted(self, resource)  # moto's own rules (trust policies)
    key = (self._access_key.arn, self._action.lower(), resource)
    if key not in _verdicts:
        _verdicts[key] = _evaluate(self, resource)
    if _verdicts[key] is not None:
        _deny(self, resource, _verdicts[key])


def _table_arn(h, table):
    if table.startswith("arn:"):
        return table
    return f"arn:{_partition(h.region)}:dynamodb:{h.region}:{h.current_account}:table/{table}"


_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def _dynamodb_pairs(h):
    """The (action, resource) pairs IAM checks for one DynamoDB request."""
    action = h._get_action()
    body = getattr(h, "params", None) or {}
    if action in ("TransactWriteItems", "TransactGetItems"):
        pairs = []
        for entry in body.get("TransactItems", []):
            for op, spec in entry.items():
                pairs.append((_TRANSACT_ACTIONS.get(op, op), _table_arn(h, spec.get("TableName", ""))))
        return pairs
    if action in ("BatchWriteItem", "BatchGetItem"):
        return [(action, _table_arn(h, t)) for t in body.get("RequestItems", {})]
    table = body.get("TableName")
    if not table:
        return [(action, "*")]
    resource = _table_arn(h, table)
    if action in ("Query", "Scan") and body.get("IndexName"):
        resource += "/index/" + body["IndexName"]
    return [(action, resource)]


def _events_pairs(h):
    action = h._get_action()
    if action != "PutEvents":
        return [(action, "*")]
    buses = []
    for entry in h._get_param("Entries") or []:
        bus = entry.get("EventBusName") or "default"
        if not bus.startswith("arn:"):
            bus = f"arn:{_partition(h.region)}:events:{h.region}:{h.current_account}:event-bus/{bus}"
        if bus not in buses:
            buses.append(bus)
    return [(action, b) for b in buses] or [(action, "*")]


def _secretsmanager_pairs(h):
    action = h._get_action()
    secret_id = h._get_param("SecretId")
    if not secret_id:
        return [(action, "*")]
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        arn = secretsmanager_backends[h.current_account][h.region].describe_secret(secret_id).arn
    except Exception:  # noqa: BLE001 - an unknown secret is denied by its would-be ARN
        arn = secret_id if secret_id.startswith("arn:") else (
            f"arn:{_partition(h.region)}:secretsmanager:{h.region}:{h.current_account}:secret:{secret_id}")
    return [(action, arn)]


def _no_auth_left():
    """True while moto still lets requests through unauthenticated (its counter)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    if ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return False
    ActionAuthenticatorMixin.request_count += 1
    return True


def _unsigned(service):
    from moto.core.exceptions import JsonRESTError
    from moto.s3.exceptions import S3ClientError

    msg = "the request is not signed: every request needs the credentials of an IAM user of this stack"
    if service == "s3":
        raise S3ClientError("AccessDenied", msg)
    raise JsonRESTError("MissingAuthenticationTokenException", msg)


def _iam_request(h, cls):
    from urllib.parse import urlparse

    path = h.raw_path
    query = urlparse(h.uri).query
    if query:
        path += "?" + query
    return cls(account_id=h.current_account, method=h.method, path=path, data=h.data,
               body=h.raw_body, headers=h.headers, action=h._get_action())


def _authorize_pairs(h, pairs_of):
    """Authenticate h's request once, then check every (action, resource) it needs."""
    if _no_auth_left():
        return
    from moto.iam.access_control import IAMRequest

    if "Authorization" not in h.headers:
        _unsigned(h.service_name)
    req = _iam_request(h, IAMRequest)
    if not _json_signature_ok(h, req):
        req.check_signature()  # botocore's canonical form decides (and reports) the rest
    for action, resource in dict.fromkeys(pairs_of(h)):
        req._action = f"{req._service}:{action}"
        req.check_action_permitted(resource)


_signing_keys: dict = {}


def _json_signature_ok(h, req):
    """Verify the SigV4 signature of a JSON-protocol request (POST / without a query,
    the shape of every DynamoDB, EventBridge and Secrets Manager call) directly.

    botocore's general signer, which moto uses, costs most of the time IAM
    enforcement adds to a request; this is the same computation (canonical request,
    string to sign, HMAC with the derived key) for this one shape, with the derived
    key kept per secret and scope. True means the signature matched; False sends the
    request to botocore's check, so a request this shortcut does not cover is never
    refused by it.
    """
    import hashlib
    import hmac

    auth = h.headers.get("Authorization", "")
    if h.method != "POST" or h.raw_path != "/" or "?" in h.uri or not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(",") if "=" in part)
    try:
        key_id, date, region, service, terminator = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
        amz_date = h.headers["X-Amz-Date"]
    except (KeyError, ValueError):
        return False
    body = h.raw_body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = {k.lower(): v for k, v in h.headers.items()}
    if any(name not in headers for name in signed):
        return False
    canonical = "\n".join([
        "POST", "/", "",
        "".join(f"{name}:{' '.join(str(headers[name]).split())}\n" for name in signed),
        ";".join(signed), hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{region}/{service}/{terminator}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    secret = req._access_key.create_credentials().secret_key
    k = _signing_keys.get((secret, scope))
    if k is None:
        k = ("AWS4" + secret).encode()
        for part in (date, region, service, terminator):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        _signing_keys[(secret, scope)] = k
    return hmac.compare_digest(hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest(), signature)


def _presigned(h, resource):
    """Authorize an S3 request signed in its query string (a presigned URL)."""
    import datetime
    import hashlib
    import hmac
    from urllib.parse import parse_qsl, quote, urlparse

    from moto.iam.access_control import S3IAMRequest, create_access_key, CreateAccessKeyFailure
    from moto.s3.exceptions import S3ClientError

    url = urlparse(h.uri)
    params = parse_qsl(url.query, keep_blank_values=True)
    q = dict(params)
    key_id, date, region, service, _ = q.get("X-Amz-Credential", "////").split("/", 4)
    try:
        access_key = create_access_key(h.current_account, _partition(region), key_id, {})
    except CreateAccessKeyFailure:
        raise S3ClientError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    signed_at = datetime.datetime.strptime(q.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    expires = int(q.get("X-Amz-Expires", "0"))
    if datetime.datetime.now(datetime.timezone.utc) > signed_at + datetime.timedelta(seconds=expires):
        raise S3ClientError("AccessDenied", "Request has expired")
    signed_headers = q.get("X-Amz-SignedHeaders", "host").split(";")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params) if k != "X-Amz-Signature")
    headers = {k.lower(): v for k, v in h.headers.items()}
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers)
    canonical = "\n".join([h.method, quote(url.path, safe="/-_.~%"), canonical_query, canonical_headers,
                           ";".join(signed_headers), "UNSIGNED-PAYLOAD"])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", q["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + access_key.create_credentials().secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest(), q.get("X-Amz-Signature", "")):
        raise S3ClientError("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
    req = S3IAMRequest.__new__(S3IAMRequest)
    req.account_id, req._region, req._service, req._data = h.current_account, region, "s3", h.data
    req._access_key = access_key
    req._action = f"s3:{h._get_action()}"
    req.check_action_permitted(resource)


def _authenticate_and_authorize_action(self, iam_request_cls, resource="*"):
    """moto's check for every other service (S3, SQS, IAM, STS), plus presigned URLs
    and a clear answer to an unsigned request."""
    if _no_auth_left():
        return
    if "Authorization" not in self.headers:
        if "X-Amz-Credential=" in self.uri:
            return _presigned(self, resource)
        _unsigned(getattr(self, "service_name", ""))
    req = _iam_request(self, iam_request_cls)
    req.check_signature()
    if _is_multi_delete(self):
        # IAM authorises DeleteObjects per key; the keys are in the body, which
        # _delete_keys reads (a denied key is an error entry of a 200 answer, as in AWS).
        self.tf_multi_delete = req
        return
    req.check_action_permitted(resource)


def _is_multi_delete(h):
    return (getattr(h, "service_name", "") == "s3" and h.method == "POST" and h.data.get("Action") == "DeleteObject"
            and "delete" in getattr(h, "querystring", {}))


def _delete_keys(delete_keys):
    from moto.iam.access_control import PermissionResult

    def wrapped(self, bucket_name, authenticated=True):
        req = getattr(self, "tf_multi_delete", None)
        if req is None or not authenticated:
            return delete_keys(self, bucket_name, authenticated)
        bucket = self.backend.get_bucket(bucket_name)
        bucket_permission = bucket.get_permission

        def permission(action, resource):
            req._action = action
            try:
                req.check_action_permitted(resource)
            except Exception:  # noqa: BLE001 - a denial of this key
                return PermissionResult.DENIED
            return bucket_permission(action, resource)

        bucket.get_permission = permission  # moto asks it once per key
        try:
            return delete_keys(self, bucket_name, authenticated)
        finally:
            del bucket.get_permission

    return wrapped


def _forget_verdicts(call_action):
    def wrapped(self):
        _verdicts.clear()  # an IAM change may change any decision
        return call_action(self)

    return wrapped


def _create_user(backend, name, key_id, secret, inline, managed):
    backend.create_user(region_name="us-east-1", user_name=name)
    for policy in inline:
        # IAM takes a document without Version as version 2008-10-17, which differs
        # from 2012-10-17 only in policy variables (literal text in 2008); moto's
        # validator insists on a Version, and moto never expands variables.
        document = {"Version": "2012-10-17", **policy["document"]}
        backend.put_user_policy(name, policy["name"], json.dumps(document))
    for arn in managed:
        backend.attach_user_policy(arn, name)
    key = backend.create_access_key(name)
    key.access_key_id, key.secret_access_key = key_id, secret


def create_users(admin, users_file):
    """Create the admin user and the users of USERS_ENV in moto itself, before any
    request: with INITIAL_NO_AUTH_ACTION_COUNT=0 no request could create them."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    key_id, secret = admin.split(":", 1)
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    _create_user(backend, ADMIN_USER, key_id, secret, [{"name": "admin", "document": everything}], [])
    if not users_file:
        return
    with open(users_file, encoding="utf-8") as f:
        users = json.load(f)
    for u in users:
        try:
            creds = u["credentials"]
            _create_user(backend, u["name"], creds["aws_access_key_id"], creds["aws_secret_access_key"],
                         u.get("inline") or [], u.get("managed") or [])
        except Exception as e:  # noqa: BLE001 - name the user whose policies moto refused
            sys.exit(f"moto_server: IAM user {u.get('name')}: {e}")


def enforce_iam():
    global _check_action_permitted
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.responses import EventsHandler
    from moto.iam.access_control import IAMRequestBase
    from moto.iam.responses import IamResponse
    from moto.s3.responses import S3Response
    from moto.secretsmanager.responses import SecretsManagerResponse

    _check_action_permitted = IAMRequestBase.check_action_permitted
    IAMRequestBase.check_action_permitted = check_action_permitted
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action
    for cls, pairs in ((DynamoHandler, _dynamodb_pairs), (EventsHandler, _events_pairs), (SecretsManagerResponse, _secretsmanager_pairs)):
        cls._authenticate_and_authorize_normal_action = lambda self, resource="*", pairs=pairs: _authorize_pairs(self, pairs)
    IamResponse.call_action = _forget_verdicts(IamResponse.call_action)
    S3Response._bucket_response_delete_keys = _delete_keys(S3Response._bucket_response_delete_keys)


_query = Table.query
_QUERY_KEYWORDS = {"hash_key_conditions", "range_key_conditions"}
# Past this many bytes of items a page ends: moto's figure for DynamoDB's 1 MB.
_PAGE_BYTES = RESULT_SIZE_LIMIT


def _range_order(table):
    """Cheap sort keys (of an item, of a key value) giving the order moto's DynamoType
    comparison gives: the raw text for string range keys (code point order, which is
    UTF-8 byte order), moto's own cast value otherwise."""
    if any(a.get("AttributeName") == table.range_key_attr and a.get("AttributeType") == "S" for a in table.attr):
        return operator.attrgetter("range_key.value"), operator.attrgetter("value")
    return (lambda item: item.range_key.cast_value), operator.attrgetter("cast_value")


def _bump(write):
    """Wrap a Table method that adds or removes items: it invalidates the table's
    cached sorted partitions (see _sorted_partition)."""

    def run(self, *args, **kwargs):
        self._tf_generation = getattr(self, "_tf_generation", 0) + 1
        return write(self, *args, **kwargs)

    return run


def _sorted_partition(table, hash_key, order):
    """The partition's items in range-key order, sorted once per change of the table
    rather than once per page: paging through a 200,000-item partition would otherwise
    sort it a hundred times. The cache holds while no item was put or deleted in the
    table (both bump its generation) and the partition dict is the same object of the
    same size (a restored table replaces it). Updates change items in place, which
    keeps their keys and so their order."""
    partition = table.items[hash_key] if hash_key in table.items else None
    if not partition:
        return []
    generation = getattr(table, "_tf_generation", 0)
    cache = table.__dict__.setdefault("_tf_sorted", {})
    hit = cache.get(hash_key)
    if hit is not None and hit[0] == generation and hit[1] is partition and hit[2] == len(partition):
        return hit[3]
    items = sorted(partition.values(), key=order)
    cache[hash_key] = (generation, partition, len(partition), items)
    return items


def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
          projection_expressions, index_name=None, *args, **kwargs):
    """Table.query that looks the partition up instead of scanning the table.

    moto answers every base-table Query by sorting the whole table (all_items) and then
    walking the partition from its first item to the page's ExclusiveStartKey with
    DynamoType comparisons, so reading one partition page by page costs O(table) per
    page and O(partition^2) in all: tens of minutes for a 200,000-item export. Here
    moto's own query runs on the items the page can hold, taken from the partition
    past the start key: the same items in the same order, with the same Limit, 1 MB
    and LastEvaluatedKey rules applied by moto. A Select=COUNT page is answered here
    by the same rules without moto's deep copy of the items it only counts (DynamoDB
    counts server-side and returns no items). Index queries, hash-only tables and
    queries with a range condition or a legacy QueryFilter keep moto's path.
    """
    filters = {k: v for k, v in kwargs.items() if k not in _QUERY_KEYWORDS}
    if index_name or hash_key is None or self.range_key_attr is None:
        return _query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
                      projection_expressions, index_name, *args, **kwargs)
    order, key_order = _range_order(self)
    items = _sorted_partition(self, hash_key, order)
    forward = scan_index_forward is not False
    if exclusive_start_key and self.range_key_attr in exclusive_start_key:
        start = key_order(DynamoType(exclusive_start_key[self.range_key_attr]))
        if forward:
            items = items[bisect.bisect_right(items, start, key=order):]
        else:
            items = items[:bisect.bisect_left(items, start, key=order)]
        exclusive_start_key = None
    if not forward:
        items = items[::-1]  # a copy: the sorted partition is cached
    if range_comparison is None and not kwargs.get("range_key_conditions") and not filters:
        # Every item counts towards the page: it ends at Limit or 1 MB, and one more
        # item lets moto see that it ended there (and set LastEvaluatedKey).
        page, size, ended = [], 0, False
        for item in items:
            page.append(item)
            size += item.size()
            if (limit and len(page) > limit) or size > _PAGE_BYTES:
                ended = True
                break
        filter_expression = args[1] if len(args) > 1 else kwargs.get("filter_expression")
        if _select.count and (filter_expression is None or isinstance(filter_expression, OpDefault)):
            # Select=COUNT returns no items, so the copy moto makes of them (the
            # largest cost of a page) is skipped; the page and its key are moto's rules.
            counted = page[:-1] if ended else page
            last = self._get_last_evaluated_key(counted[-1], None) if ended and counted else None
            return counted, len(counted), last
        items = page
    if not forward:
        items.reverse()
    self.all_items = lambda: items  # an instance attribute shadows the method for this call
    try:
        return _query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
                      projection_expressions, index_name, *args, **kwargs)
    finally:
        del self.all_items


class _Select(threading.local):
    count = False


# Whether the Query being served is Select=COUNT (set by count_aware around moto's
# DynamoHandler.query; the server is single-threaded, the thread-local is for safety).
_select = _Select()


def count_aware(handler_query):
    def run(self):
        _select.count = self.body.get("Select") == "COUNT"
        try:
            return handler_query(self)
        finally:
            _select.count = False

    return run


# Members of DynamoDB responses that carry items: large, and plain attribute values.
_ITEM_MEMBERS = ("Items", "Item", "Responses", "Attributes", "LastEvaluatedKey", "UnprocessedKeys", "UnprocessedItems")


def _plain(value):
    """JSON-ready form of an attribute value tree as dynamo_to_dict leaves it: bytes
    become base64 text (as the JSON protocol sends blobs), None members are dropped."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


def fast_items(execute_result):
    """Wrap DynamoResult.execute_result: moto's model-driven serializer walks every
    attribute of every item through botocore's shape model (measured: 0.8 ms of CPU per
    1 KB item, 9 s for a 10,000-item Query read), the largest cost of big reads. Items
    are already plain attribute values, so they are encoded with json directly, while
    moto's serializer still writes everything else (status, headers, counts, capacity)
    from the response without them. A test compares both encodings."""

    def run(self, context):
        result = self.result
        if not isinstance(result, dict) or not any(k in result for k in _ITEM_MEMBERS):
            return execute_result(self, context)
        heavy = {k: result[k] for k in _ITEM_MEMBERS if k in result}
        rest = {k: v for k, v in result.items() if k not in heavy}
        light = copy.copy(self)
        light._result = rest
        status, headers, body = execute_result(light, context)
        doc = json.loads(body) if body else {}
        doc.update(_plain(heavy))
        return status, headers, json.dumps(doc, separators=(",", ":"))

    return run


BULK_PUT_PATH = "/_tenantflow/dynamodb/bulk-put"


def bulk_put(app):
    """WSGI middleware serving BULK_PUT_PATH, the seeding path of the test tooling
    (stack.BulkPut): a JSON body {"table", "region", "items": [wire-format items]} is
    written straight into the moto table, one Table.put_item per item. It exists
    because a BatchWriteItem through moto's model-driven request parser costs about
    four times the write itself (measured: ~1,900 vs ~7,900 items/s of 450-byte items),
    and the benchmarks seed 100,000 tenants and 220,000 data items. It checks no IAM
    and no condition: nothing deployed calls it (the functions speak only the AWS API),
    and anything it writes is then read through the real API."""

    def run(environ, start_response):
        if environ.get("PATH_INFO") != BULK_PUT_PATH or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            doc = json.loads(environ["wsgi.input"].read(length))
            table = dynamodb_backends[doc.get("account", DEFAULT_ACCOUNT_ID)][doc["region"]].get_table(doc["table"])
            for item in doc["items"]:
                table.put_item(item)
        except Exception as err:  # the caller is a test tool: tell it what went wrong
            body = json.dumps({"error": f"{type(err).__name__}: {err}"}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        body = json.dumps({"written": len(doc["items"])}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return run


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = query
    Table.put_item = _bump(Table.put_item)
    Table.delete_item = _bump(Table.delete_item)
    DynamoHandler.query = count_aware(DynamoHandler.query)
    DynamoResult.execute_result = fast_items(DynamoResult.execute_result)
    if os.environ.get(ADMIN_ENV):
        enforce_iam()
        create_users(os.environ[ADMIN_ENV], os.environ.get(USERS_ENV))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, bulk_put(app), threaded=False, use_reloader=False)


if __name__ == "__main__":
    main()
