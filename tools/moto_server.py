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

/_tenantflow/usage meters every request per IAM principal once a DELETE of it has
started the meter, with DynamoDB's request units (see "Usage metering" below).
"""
import base64
import bisect
import copy
import io
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


def _versioned_keys(body):
    """The keys a DeleteObjects body names with a VersionId: IAM authorises those as
    s3:DeleteObjectVersion, the others as s3:DeleteObject (moto asks s3:DeleteObject
    for every key)."""
    import xmltodict

    try:
        objects = xmltodict.parse(body, strip_whitespace=False)["Delete"].get("Object", [])
    except Exception:  # noqa: BLE001 - moto itself answers a malformed body
        return set()
    if not isinstance(objects, list):
        objects = [objects]
    return {o.get("Key") for o in objects if isinstance(o, dict) and o.get("VersionId")}


def _delete_keys(delete_keys):
    from moto.iam.access_control import PermissionResult

    def wrapped(self, bucket_name, authenticated=True):
        req = getattr(self, "tf_multi_delete", None)
        if req is None or not authenticated:
            return delete_keys(self, bucket_name, authenticated)
        bucket = self.backend.get_bucket(bucket_name)
        bucket_permission = bucket.get_permission
        versioned = _versioned_keys(self.body)
        key_of = f"arn:aws:s3:::{bucket_name}/"

        def permission(action, resource):
            if action == "s3:DeleteObject" and resource.startswith(key_of) and resource[len(key_of):] in versioned:
                action = "s3:DeleteObjectVersion"
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


# ---------------------------------------------------------------------------------------
# Usage metering.
#
# USAGE_PATH reports what each caller asked of the emulator, counted from outside the
# functions: per principal (the IAM user an access key belongs to, so one function
# each in the local stack), per service and per action, the requests, and for
# DynamoDB the items and bytes read and written and the request units they cost under
# DynamoDB's on-demand rules (docs/cost.md). It is off until the first DELETE of
# USAGE_PATH (which zeroes and starts it) or with TENANTFLOW_MOTO_METER set, so a stack
# that does not meter pays nothing for it. Like BULK_PUT_PATH it is test tooling:
# nothing deployed calls it.
#
#   GET    USAGE_PATH            {"enabled", "principals": {name: {service: {action: {...}}}}}
#   GET    USAGE_PATH?storage=1  the same plus "tables": items and bytes per table and index
#   DELETE USAGE_PATH            zero every counter and start metering

USAGE_PATH = "/_tenantflow/usage"
METER_ENV = "TENANTFLOW_MOTO_METER"

# DynamoDB's units: a write unit per KB written, a read unit per 4 KB read (strongly
# consistent; half for eventually consistent, twice for transactional), and the
# overhead an index entry carries for storage and index writes.
_WRITE_UNIT, _READ_UNIT, _INDEX_OVERHEAD = 1024, 4096, 100


class _Meter:
    enabled = bool(os.environ.get(METER_ENV))
    principals: dict = {}  # name -> service -> action -> counters
    key_names: dict = {}  # access key id -> IAM user name (looked up once per key)


_meter_lock = threading.Lock()


class _Current(threading.local):
    # While a metered Query is served: [items read, bytes read] of the items it read.
    query = None


_current = _Current()


def _number_bytes(text):
    """Size of a number: 1 byte per two significant digits, plus 1 (leading and
    trailing zeroes trimmed)."""
    digits = str(text).lstrip("+-").lower().split("e")[0].replace(".", "").strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


def _binary_len(x):
    if isinstance(x, (bytes, bytearray)):
        return len(x)
    try:
        return len(base64.b64decode(x))
    except Exception:  # noqa: BLE001 - not base64: count the text
        return len(str(x).encode())


def _value_bytes(v):
    """Size of one attribute value, wire form ({"S": ...}) or moto's DynamoType, as
    DynamoDB counts it: strings as UTF-8, numbers as above, binaries raw, booleans and
    nulls 1 byte, sets the sum of their elements, lists and maps 3 bytes plus 1 byte
    and the size (with the name, for maps) of each element."""
    if isinstance(v, DynamoType):
        t, x = v.type, v.value
    else:
        (t, x), = v.items()
    if t == "S":
        return len(x.encode())
    if t == "N":
        return _number_bytes(x)
    if t == "B":
        return _binary_len(x)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "SS":
        return sum(len(e.encode()) for e in x)
    if t == "NS":
        return sum(_number_bytes(e) for e in x)
    if t == "BS":
        return sum(_binary_len(e) for e in x)
    if t == "L":
        return 3 + sum(1 + _value_bytes(e) for e in x)
    if t == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(e) for k, e in x.items())
    return len(json.dumps(x, default=str).encode())


def _attrs_bytes(attrs):
    return sum(len(name.encode()) + _value_bytes(v) for name, v in attrs.items())


def _plain_value(v):
    """A value as comparable plain data (to tell whether an index entry changed)."""
    if isinstance(v, DynamoType):
        t, x = v.type, v.value
    else:
        (t, x), = v.items()
    if t == "L":
        return ("L", tuple(_plain_value(e) for e in x))
    if t == "M":
        return ("M", tuple(sorted((k, _plain_value(e)) for k, e in x.items())))
    if t in ("SS", "NS", "BS"):
        return (t, tuple(sorted(str(e) for e in x)))
    return (t, x if isinstance(x, (str, bool, int, float)) or x is None else str(x))


def _units(size, unit):
    return -(-max(size, 1) // unit)  # ceil; every request costs at least one unit


def _table(region, name):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(name)


def _key_of(table, item):
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _snapshot(table, key):
    """(size, {index: (key, entry size, entry)}) of the item at key now; size 0 and no
    entries when there is none. Summaries, not references: moto updates in place."""
    try:
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        item = table.get_item(hash_value, range_value)
    except Exception:  # noqa: BLE001 - a malformed key: moto answers the error itself
        item = None
    if item is None:
        return 0, {}
    attrs = item.attrs
    entries = {}
    for index in list(table.global_indexes or []) + list(table.indexes or []):
        names = [k["AttributeName"] for k in index.schema]
        if any(n not in attrs for n in names):
            continue  # sparse: the item is not in this index
        kind = (index.projection or {}).get("ProjectionType", "ALL")
        if kind == "ALL":
            projected = attrs
        else:
            keep = set(table.table_key_attrs) | set(names)
            if kind == "INCLUDE":
                keep |= set(index.projection.get("NonKeyAttributes", []))
            projected = {n: v for n, v in attrs.items() if n in keep}
        entries[index.name] = (tuple(_plain_value(attrs[n]) for n in names), _attrs_bytes(projected) + _INDEX_OVERHEAD,
                               tuple(sorted((n, _plain_value(v)) for n, v in projected.items())))
    return _attrs_bytes(attrs), entries


def _index_units(before, after):
    """Write units the indexes take for one item going from before to after: a new
    entry is a put, a removed one a delete, a changed key a delete and a put, a changed
    entry under the same key an update; an unchanged entry costs nothing."""
    units = 0
    for name in set(before) | set(after):
        b, a = before.get(name), after.get(name)
        if b and a:
            if b[0] != a[0]:
                units += _units(b[1], _WRITE_UNIT) + _units(a[1], _WRITE_UNIT)
            elif b[2] != a[2]:
                units += _units(max(a[1], b[1]), _WRITE_UNIT)
        elif b or a:
            units += _units((b or a)[1], _WRITE_UNIT)
    return units


def _dynamodb_targets(action, params):
    """The items one DynamoDB request reads or writes: (table, key, kind, consistent)
    with kind read, tread (transactional read), write or twrite (transactional)."""
    out = []
    if action in ("GetItem", "DeleteItem", "UpdateItem"):
        out.append((params.get("TableName"), params.get("Key"), "read" if action == "GetItem" else "write", params.get("ConsistentRead")))
    elif action == "PutItem":
        out.append((params.get("TableName"), ("item", params.get("Item")), "write", None))
    elif action == "BatchGetItem":
        for name, spec in (params.get("RequestItems") or {}).items():
            for key in spec.get("Keys", []):
                out.append((name, key, "read", spec.get("ConsistentRead")))
    elif action == "BatchWriteItem":
        for name, reqs in (params.get("RequestItems") or {}).items():
            for r in reqs:
                if "PutRequest" in r:
                    out.append((name, ("item", r["PutRequest"].get("Item")), "write", None))
                elif "DeleteRequest" in r:
                    out.append((name, r["DeleteRequest"].get("Key"), "write", None))
    elif action in ("TransactWriteItems", "TransactGetItems"):
        for entry in params.get("TransactItems") or []:
            for op, spec in entry.items():
                key = ("item", spec.get("Item")) if op == "Put" else spec.get("Key")
                out.append((spec.get("TableName"), key, "tread" if op == "Get" else "twrite", None))
    return out


def _resolve(region, targets):
    """Targets with their moto table and key (the key of a put's item)."""
    out = []
    for name, key, kind, consistent in targets:
        try:
            table = _table(region, name)
            if isinstance(key, tuple):
                key = _key_of(table, key[1])
        except Exception:  # noqa: BLE001 - unknown table or keyless item: moto refuses it
            continue
        out.append((table, key, kind, consistent))
    return out


def _principal(key_id):
    if not key_id:
        return "anonymous"
    name = _Meter.key_names.get(key_id)
    if name is None:
        name = key_id
        try:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.iam.models import iam_backends

            for user in iam_backends[DEFAULT_ACCOUNT_ID]["aws"].users.values():
                if any(k.access_key_id == key_id for k in user.access_keys):
                    name = user.name
                    break
        except Exception:  # noqa: BLE001 - without IAM users the key id is the name
            pass
        _Meter.key_names[key_id] = name
    return name


def _scope(environ):
    """(access key id, region, service) from the SigV4 credential scope of a request,
    signed in its header or (presigned) in its query."""
    from urllib.parse import parse_qs

    auth = environ.get("HTTP_AUTHORIZATION", "")
    cred = ""
    if "Credential=" in auth:
        cred = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    elif "X-Amz-Credential=" in environ.get("QUERY_STRING", ""):
        cred = parse_qs(environ["QUERY_STRING"]).get("X-Amz-Credential", [""])[0]
    parts = cred.split("/")
    if len(parts) < 4:
        return "", "us-east-1", ""
    return parts[0], parts[2], parts[3]


# S3 request classes as S3 Standard prices them: PUT, COPY, POST and LIST requests
# (tier1), GET, HEAD and all other requests (tier2), DELETE and CANCEL requests (free).
_S3_CLASS = {
    "PutObject": "tier1", "CopyObject": "tier1", "UploadPart": "tier1", "CreateMultipartUpload": "tier1",
    "CompleteMultipartUpload": "tier1", "ListObjects": "tier1", "ListObjectsV2": "tier1", "ListObjectVersions": "tier1", "ListParts": "tier1",
    "ListMultipartUploads": "tier1", "PostObject": "tier1", "PutBucket": "tier1",
    "DeleteObject": "free", "DeleteObjects": "free", "AbortMultipartUpload": "free", "DeleteBucket": "free",
}


def _s3_action(environ):
    from urllib.parse import parse_qs

    method = environ.get("REQUEST_METHOD", "GET")
    q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    parts = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    if method in ("GET", "HEAD"):
        if method == "HEAD":
            return "HeadObject" if has_key else "HeadBucket"
        if has_key:
            return "ListParts" if "uploadId" in q else "GetObject"
        if "uploads" in q:
            return "ListMultipartUploads"
        if "versions" in q:
            return "ListObjectVersions"
        return "ListObjectsV2" if "list-type" in q else ("ListObjects" if not q or "prefix" in q or "marker" in q else "GetBucket")
    if method == "PUT":
        if not has_key:
            return "PutBucket"
        if "partNumber" in q:
            return "UploadPart"
        return "CopyObject" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else "PutObject"
    if method == "POST":
        if "delete" in q:
            return "DeleteObjects"
        if "uploads" in q:
            return "CreateMultipartUpload"
        return "CompleteMultipartUpload" if "uploadId" in q else "PostObject"
    if method == "DELETE":
        if "uploadId" in q:
            return "AbortMultipartUpload"
        return "DeleteObject" if has_key else "DeleteBucket"
    return method


def _counter(principal, service, action):
    svc = _Meter.principals.setdefault(principal, {}).setdefault(service, {})
    return svc.setdefault(action, {"requests": 0, "errors": 0})


def _add(c, **fields):
    for k, v in fields.items():
        c[k] = c.get(k, 0) + v


def _error_type(body):
    try:
        return str(json.loads(body).get("__type", "")).split("#")[-1]
    except Exception:  # noqa: BLE001 - not JSON
        return ""


def _record_dynamodb(c, action, params, targets, before, ok, error, query):
    """Units of one DynamoDB request. A write whose condition failed (alone or in a
    cancelled transaction) still costs its write units, as in DynamoDB; other errors
    cost nothing. Transactional writes cost twice; index writes (asynchronous, outside
    the transaction) once."""
    conditional = error in ("ConditionalCheckFailedException", "TransactionCanceledException")
    if not ok:
        _add(c, errors=1)
        if conditional:
            _add(c, conditional_failures=1)
        else:
            return
    if action in ("Query", "Scan"):
        items, size = query or (0, 0)
        factor = 1.0 if params.get("ConsistentRead") else 0.5
        _add(c, items_read=items, bytes_read=size, rru=factor * _units(size, _READ_UNIT))
        return
    for (table, key, kind, consistent), (b_size, b_idx) in zip(targets, before):
        if kind in ("read", "tread"):
            factor = 2.0 if kind == "tread" else (1.0 if consistent else 0.5)
            _add(c, items_read=1 if b_size else 0, bytes_read=b_size, rru=factor * _units(b_size, _READ_UNIT))
            continue
        a_size, a_idx = _snapshot(table, key)
        factor = 2 if kind == "twrite" else 1
        _add(c, wru=factor * _units(max(b_size, a_size), _WRITE_UNIT))
        if ok:
            index = _index_units(b_idx, a_idx)
            _add(c, items_written=1, bytes_written=max(b_size, a_size), index_wru=index, wru=index)


def _metered(environ, app, start_response):
    key_id, region, service = _scope(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    params, targets, before = {}, [], []
    if target:
        action = target.rsplit(".", 1)[-1]
        service = {"DynamoDB_20120810": "dynamodb", "AWSEvents": "events", "secretsmanager": "secretsmanager",
                   "AmazonSQS": "sqs"}.get(target.split(".", 1)[0], service or "unknown")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
    elif service == "s3":
        action = _s3_action(environ)
    elif service:
        from urllib.parse import parse_qs

        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [environ.get("REQUEST_METHOD", "?")])[0]
    else:
        return app(environ, start_response)
    if service == "dynamodb":
        targets = _resolve(region, _dynamodb_targets(action, params))
        before = [_snapshot(t, k) for t, k, _, _ in targets]
        if action in ("Query", "Scan"):
            _current.query = [0, 0]
    answer = {}

    def capture(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    try:
        chunks = app(environ, capture)
        try:
            out = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
    finally:
        query, _current.query = _current.query, None
    try:
        with _meter_lock:
            c = _counter(_principal(key_id), service, action)
            ok = answer.get("status") == 200 or (service == "s3" and 200 <= answer.get("status", 0) < 300)
            _add(c, requests=1)
            if service == "dynamodb":
                _record_dynamodb(c, action, params, targets, before, ok, "" if ok else _error_type(out), query)
            elif not ok:
                _add(c, errors=1)
            elif service == "events" and action == "PutEvents":
                entries = params.get("Entries") or []
                # EventBridge bills each entry per 64 KB chunk of its payload.
                size = [sum(len(str(e.get(f) or "").encode()) for f in ("Source", "DetailType", "Detail", "Time"))
                        + sum(len(r.encode()) for r in e.get("Resources") or []) for e in entries]
                _add(c, entries=len(entries), chunks=sum(_units(s, 65536) for s in size))
            elif service == "s3":
                sent = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH") or 0
                _add(c, bytes_in=int(sent), bytes_out=len(out))
                c["class"] = _S3_CLASS.get(action, "tier2")
    except Exception as err:  # noqa: BLE001 - metering must never break an answer
        print(f"moto_server: usage meter: {type(err).__name__}: {err}", file=sys.stderr)
    return [out]


def _storage():
    """Items and bytes (with DynamoDB's 100 bytes of overhead per item) of every table
    and index, as DynamoDB bills storage."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    out = {}
    for region, backend in dynamodb_backends[DEFAULT_ACCOUNT_ID].items():
        for name, table in backend.tables.items():
            t = out[name] = {"region": region, "items": 0, "bytes": 0, "indexes": {}}
            for item in table.all_items():
                t["items"] += 1
                t["bytes"] += _attrs_bytes(item.attrs) + _INDEX_OVERHEAD
            for index in list(table.global_indexes or []) + list(table.indexes or []):
                n = size = 0
                for item in table.all_items():
                    names = [k["AttributeName"] for k in index.schema]
                    if all(k in item.attrs for k in names):
                        n += 1
                        size += _attrs_bytes(index.project(item).attrs) + _INDEX_OVERHEAD
                t["indexes"][index.name] = {"items": n, "bytes": size}
    return out


def usage_meter(app):
    """WSGI middleware metering every request (see "Usage metering" above) and serving
    USAGE_PATH."""

    def run(environ, start_response):
        if environ.get("PATH_INFO") == USAGE_PATH:
            method = environ.get("REQUEST_METHOD")
            with _meter_lock:
                if method == "DELETE":
                    _Meter.principals, _Meter.key_names, _Meter.enabled = {}, {}, True
                    doc = {"enabled": True}
                elif method == "GET":
                    doc = {"enabled": _Meter.enabled, "principals": copy.deepcopy(_Meter.principals)}
                    if "storage=1" in environ.get("QUERY_STRING", ""):
                        doc["tables"] = _storage()
                else:
                    start_response("405 Method Not Allowed", [("Content-Length", "0")])
                    return [b""]
            body = json.dumps(doc).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if not _Meter.enabled or environ.get("PATH_INFO") == BULK_PUT_PATH:
            return app(environ, start_response)
        return _metered(environ, app, start_response)

    return run


def metered_query(table_query):
    """Wrap Table.query so a metered request learns the items the query read: the ones
    DynamoDB bills, before any filter and whatever the projection. Without a filter or
    projection those are the items the query returns; otherwise the same page is read
    again without them (only while metering). Nothing changes in the answer."""

    def run(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
            projection_expressions, index_name=None, *args, **kwargs):
        out = table_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
                          projection_expressions, index_name, *args, **kwargs)
        acc = _current.query
        if acc is None:
            return out
        results, scanned, _ = out
        filter_expression = args[1] if len(args) > 1 else kwargs.get("filter_expression")
        legacy = any(k not in _QUERY_KEYWORDS | {"filter_expression"} for k in kwargs)
        filtered = filter_expression is not None and not isinstance(filter_expression, OpDefault)
        items = results
        if (filtered or projection_expressions or legacy) and scanned:
            rest = list(args)
            if len(rest) > 1:
                rest[1] = None
            plain = {k: v for k, v in kwargs.items() if k in _QUERY_KEYWORDS}
            items, _, _ = table_query(self, hash_key, range_comparison, range_objs, scanned, exclusive_start_key,
                                      scan_index_forward, None, index_name, *rest, **plain)
        acc[0] += len(items)
        acc[1] += sum(_attrs_bytes(i.attrs) for i in items)
        return out

    return run


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = metered_query(query)
    Table.put_item = _bump(Table.put_item)
    Table.delete_item = _bump(Table.delete_item)
    DynamoHandler.query = count_aware(DynamoHandler.query)
    DynamoResult.execute_result = fast_items(DynamoResult.execute_result)
    if os.environ.get(ADMIN_ENV):
        enforce_iam()
        create_users(os.environ[ADMIN_ENV], os.environ.get(USERS_ENV))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, usage_meter(bulk_put(app)), threaded=False, use_reloader=False)


if __name__ == "__main__":
    main()
