#!/usr/bin/env python3
"""Drives alibaba-kms-sim with Alibaba Cloud's own Python SDK (alibabacloud-kms20160120).

    alibaba_conformance.py URL ACCESS_KEY_ID ACCESS_KEY_SECRET

Runs a fixed scenario against a fresh simulator and prints one JSON observation per
step on stdout. Observations are normalised: no request ids or dates, and secret values
by name ("one", "two", ...) rather than by content. tests/alibaba_conformance.rs runs the
same scenario through the Rust client and compares the two transcripts line by line, so
the step names and fields here must match tests/alibaba_conformance.rs.
"""

import json
import sys
import urllib.request

from alibabacloud_kms20160120 import models as kms
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import utils_models as open_api
from darabonba.runtime import RuntimeOptions

SECRET = "conf-db"
PENDING = "SecretRotatorPending"
# Values stand for themselves only here: observations carry their names.
VALUES = {"one": "s3cr3t-one!", "two": "s3cr3t two*", "three": "s3cr3t~three/"}
NAMES = {v: k for k, v in VALUES.items()}


def client(url, ak, secret):
    endpoint = url.split("://", 1)[1].rstrip("/")
    cfg = open_api.Config(
        access_key_id=ak,
        access_key_secret=secret,
        endpoint=endpoint,
        protocol="http",
        region_id="cn-hangzhou",
    )
    return Client(cfg)


def emit(step, **fields):
    print(json.dumps({"step": step, **fields}, sort_keys=True), flush=True)


def call(step, fn, shape):
    """Runs fn(); emits shape(body) or the error's HTTP status and code."""
    try:
        body = fn().body.to_map()
    except Exception as e:  # the SDK raises ClientException/ServerException
        status = getattr(e, "status_code", None)
        code = getattr(e, "code", None)
        if status is None or code is None:
            raise
        emit(step, error={"status": int(status), "code": str(code)})
        return None
    emit(step, ok=shape(body))
    return body


def stages(v):
    return sorted((v or {}).get("VersionStage") or [])


def tags(body):
    t = body.get("Tags")
    if t is None:
        return None
    return sorted([x["TagKey"], x.get("TagValue", "")] for x in (t.get("Tag") or []))


def value_of(body):
    return {
        "version_id": body.get("VersionId"),
        "value": NAMES.get(body.get("SecretData"), "?"),
        "stages": stages(body.get("VersionStages")),
    }


def admin_fault(url, kind, count):
    req = urllib.request.Request(
        url.rstrip("/") + "/_sim/faults",
        data=json.dumps({"kind": kind, "count": count}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def main():
    url, ak, secret = sys.argv[1:4]
    c = client(url, ak, secret)
    rt = RuntimeOptions()

    def create(name, version, value, tag_list=None):
        req = kms.CreateSecretRequest(
            secret_name=name, version_id=version, secret_data=VALUES[value]
        )
        if tag_list:
            req.tags = json.dumps([{"TagKey": k, "TagValue": v} for k, v in tag_list])
        return lambda: c.create_secret_with_options(req, rt)

    call("create", create(SECRET, "v1", "one", [("team", "db")]),
         lambda b: {"arn": b.get("Arn"), "name": b.get("SecretName"), "version_id": b.get("VersionId")})
    call("create_again", create(SECRET, "v9", "two"), lambda b: {})
    for n in ("conf-a", "conf-b", "conf-c"):
        call("create_" + n, create(n, "v1", "one"), lambda b: {"name": b.get("SecretName")})

    def put(version, value, stage_list=None):
        req = kms.PutSecretValueRequest(
            secret_name=SECRET, version_id=version, secret_data=VALUES[value]
        )
        if stage_list is not None:
            req.version_stages = json.dumps(stage_list)
        return lambda: c.put_secret_value_with_options(req, rt)

    def put_shape(b):
        return {"version_id": b.get("VersionId"), "stages": stages(b.get("VersionStages"))}

    def get(stage=None, version=None, name=SECRET):
        req = kms.GetSecretValueRequest(secret_name=name, version_stage=stage, version_id=version)
        return lambda: c.get_secret_value_with_options(req, rt)

    def move(stage, to=None, frm=None):
        req = kms.UpdateSecretVersionStageRequest(
            secret_name=SECRET, version_stage=stage, move_to_version=to, remove_from_version=frm
        )
        return lambda: c.update_secret_version_stage_with_options(req, rt)

    call("put_pending", put("v2", "two", [PENDING]), put_shape)
    call("get_pending", get(stage=PENDING), value_of)
    call("get_v1", get(version="v1"), value_of)
    call("get_v2_as_current", get(stage="ACSCurrent", version="v2"), value_of)
    call("get_default", get(), value_of)
    call("move_current", move("ACSCurrent", to="v2", frm="v1"), lambda b: {})
    call("get_previous", get(stage="ACSPrevious"), value_of)
    call("get_current", get(stage="ACSCurrent"), value_of)
    call("remove_pending", move(PENDING, frm="v2"), lambda b: {})
    call("get_pending_gone", get(stage=PENDING), value_of)
    call("remove_current", move("ACSCurrent", frm="v2"), lambda b: {})
    call("put_same_again", put("v2", "two", [PENDING]), put_shape)
    call("put_different_again", put("v2", "three", [PENDING]), put_shape)
    call("put_current", put("v3", "three"), put_shape)

    def list_versions(deprecated):
        pages, n = [], 1
        while True:
            req = kms.ListSecretVersionIdsRequest(
                secret_name=SECRET, page_number=n, page_size=2,
                include_deprecated="true" if deprecated else "false",
            )
            body = c.list_secret_version_ids_with_options(req, rt).body.to_map()
            items = (body.get("VersionIds") or {}).get("VersionId") or []
            pages.append([[v["VersionId"], stages(v.get("VersionStages"))] for v in items])
            if n * 2 >= int(body.get("TotalCount", 0)):
                return {"total": int(body.get("TotalCount", 0)), "pages": pages}
            n += 1

    emit("list_versions", ok=list_versions(False))
    emit("list_versions_deprecated", ok=list_versions(True))

    def tag(pairs):
        req = kms.TagResourceRequest(
            secret_name=SECRET,
            tags=json.dumps([{"TagKey": k, "TagValue": v} for k, v in pairs]),
        )
        return lambda: c.tag_resource_with_options(req, rt)

    call("tag", tag([("secret-rotator:last-rotated", "2026-03-03T02:00:00Z"), ("team", "kms")]),
         lambda b: {})
    call("tag_reserved", tag([("acs:x", "1")]), lambda b: {})

    def describe(fetch, name=SECRET):
        req = kms.DescribeSecretRequest(secret_name=name, fetch_tags="true" if fetch else None)
        return lambda: c.describe_secret_with_options(req, rt)

    describe_shape = lambda b: {"arn": b.get("Arn"), "name": b.get("SecretName"), "tags": tags(b)}
    call("describe_tags", describe(True), describe_shape)
    call("describe_plain", describe(False), describe_shape)
    call("describe_missing", describe(True, name="nope"), describe_shape)

    def list_secrets():
        pages, n = [], 1
        while True:
            req = kms.ListSecretsRequest(page_number=n, page_size=3, fetch_tags="true")
            body = c.list_secrets_with_options(req, rt).body.to_map()
            items = (body.get("SecretList") or {}).get("Secret") or []
            pages.append([[s["SecretName"], tags(s)] for s in items])
            if n * 3 >= int(body.get("TotalCount", 0)):
                return {"total": int(body.get("TotalCount", 0)), "pages": pages}
            n += 1

    emit("list_secrets", ok=list_secrets())

    admin_fault(url, "throttle", 1)
    call("throttled", get(stage="ACSCurrent"), value_of)
    call("after_throttle", get(stage="ACSCurrent"), value_of)
    admin_fault(url, "error", 1)
    call("server_error", get(stage="ACSCurrent"), value_of)

    bad = client(url, ak, secret + "x")
    call("bad_signature",
         lambda: bad.get_secret_value_with_options(kms.GetSecretValueRequest(secret_name=SECRET), rt),
         value_of)
    unknown = client(url, "NoSuchKey", secret)
    call("unknown_key",
         lambda: unknown.get_secret_value_with_options(kms.GetSecretValueRequest(secret_name=SECRET), rt),
         value_of)


if __name__ == "__main__":
    main()
