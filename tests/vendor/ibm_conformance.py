#!/usr/bin/env python3
"""The IBM store's conformance scenario, driven with IBM's own Python SDK.

Runs against an ibm-sm-sim at $IBM_SIM_URL (both the IAM URL and the service URL),
with the API key $IBM_API_KEY, and prints one JSON observation per step on stdout.
Observations hold no ids, dates or secret values: values are named (see VALUES), errors
are classes. tests/ibm_conformance.rs runs the same scenario through the Rust client
and requires the same transcript, so the simulator is checked against the vendor SDK
and our client against the simulator. The sim must be started with --token-ttl 3.
"""

import json
import os
import sys
import time
import urllib.request
import uuid

import requests
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import IAMAuthenticator
from ibm_secrets_manager_sdk.secrets_manager_v2 import (
    ArbitrarySecretMetadataPatch,
    ArbitrarySecretPrototype,
    ArbitrarySecretVersionPrototype,
    KVSecretPrototype,
    KVSecretVersionPrototype,
    Secret,
    SecretMetadata,
    SecretMetadataPaginatedCollection,
    SecretVersion,
    SecretVersionMetadata,
    SecretVersionMetadataCollection,
    SecretVersionMetadataPatch,
    SecretsManagerV2,
    UsernamePasswordSecretPrototype,
    UsernamePasswordSecretVersionPrototype,
)

URL = os.environ["IBM_SIM_URL"].rstrip("/")
KEY = os.environ["IBM_API_KEY"]
TOKEN_TTL = 3
TOKEN = "secret_rotator_token"

# Test values by name: observations say the name, never the value.
VALUES = {
    "arb1": "arbitrary-value-one",
    "arb2": "arbitrary-value-two",
    "kv1": {"user": "app", "password": "kv-password-one"},
    "kv2": {"user": "app", "password": "kv-password-two"},
    "pw1": "user-password-one",
    "pw2": "user-password-two",
    "page": "page-value",
}


def name_of(value):
    for name, known in VALUES.items():
        if known == value:
            return name
    return "unknown"


def emit(step, **fields):
    print(json.dumps({"step": step, **fields}, sort_keys=True), flush=True)


def sim(path, body=None):
    req = urllib.request.Request(URL + path, method="POST" if body is not None else "GET")
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def ops(op):
    return sim("/_sim/calls")["operations"].get(op, 0)


def error_class(e):
    """The store's error class for an SDK failure (src/stores/ibm/errors.rs)."""
    if isinstance(e, ApiException):
        status = e.status_code
        url = e.http_response.url if e.http_response is not None else ""
        if "/identity/token" in url and status in (400, 401, 403):
            return "access_denied"
    elif isinstance(e, requests.exceptions.RetryError):
        text = str(e)
        status = 429 if "429" in text else 503
    else:
        return "other:" + type(e).__name__
    if status in (400, 405, 413, 415, 422):
        return "invalid"
    if status in (401, 403):
        return "access_denied"
    if status == 404:
        return "not_found"
    if status in (409, 412):
        return "conflict"
    if status == 429:
        return "throttled"
    if 500 <= status <= 599:
        return "transient"
    return "other"


def client(key=KEY):
    sm = SecretsManagerV2(authenticator=IAMAuthenticator(key, url=URL))
    sm.set_service_url(URL)
    # IBM's documented retry setup: 4 retries; Retry-After is honoured.
    sm.enable_retries(max_retries=4, retry_interval=2.0)
    return sm


def data_of(model):
    """(kind, value name) of a Secret / SecretVersion model."""
    d = model.to_dict()
    if "payload" in d:
        return {"payload": name_of(d["payload"])}
    if "data" in d:
        return {"data": name_of(d["data"])}
    return {"username": d.get("username"), "password": name_of(d.get("password"))}


def meta_obs(m):
    d = m.to_dict()
    return {
        "type": d["secret_type"],
        "group": d["secret_group_id"],
        "versions_total": d["versions_total"],
        "custom_metadata": d.get("custom_metadata", {}),
    }


def main():
    sm = client()
    ids = {}

    # 1. One secret of each type, each with a token on its first version.
    r = sm.create_secret(ArbitrarySecretPrototype(
        name="conf-arb", secret_type="arbitrary", payload=VALUES["arb1"],
        custom_metadata={"team": "payments"}, version_custom_metadata={TOKEN: "tok-a1"}))
    s = Secret.from_dict(r.get_result())
    ids["arb"] = s.id
    emit("create_arbitrary", ok=r.get_status_code() == 201, **meta_obs(s))

    r = sm.create_secret(KVSecretPrototype(
        name="conf-kv", secret_type="kv", data=VALUES["kv1"], version_custom_metadata={TOKEN: "tok-k1"}))
    s = Secret.from_dict(r.get_result())
    ids["kv"] = s.id
    emit("create_kv", ok=r.get_status_code() == 201, **meta_obs(s))

    r = sm.create_secret(UsernamePasswordSecretPrototype(
        name="conf-up", secret_type="username_password", username="app", password=VALUES["pw1"],
        version_custom_metadata={TOKEN: "tok-u1"}))
    s = Secret.from_dict(r.get_result())
    ids["up"] = s.id
    emit("create_userpass", ok=r.get_status_code() == 201, auto_rotate=s.to_dict()["rotation"]["auto_rotate"], **meta_obs(s))

    # 2. A name taken by a secret of the same type.
    try:
        sm.create_secret(ArbitrarySecretPrototype(name="conf-arb", secret_type="arbitrary", payload="x"))
        emit("duplicate_name", ok=True)
    except Exception as e:  # noqa: BLE001
        emit("duplicate_name", ok=False, error=error_class(e))

    # 3. A second version of each.
    protos = {
        "arb": ArbitrarySecretVersionPrototype(payload=VALUES["arb2"], version_custom_metadata={TOKEN: "tok-a2"}),
        "kv": KVSecretVersionPrototype(data=VALUES["kv2"], version_custom_metadata={TOKEN: "tok-k2"}),
        "up": UsernamePasswordSecretVersionPrototype(password=VALUES["pw2"], version_custom_metadata={TOKEN: "tok-u2"}),
    }
    for kind in ("arb", "kv", "up"):
        r = sm.create_secret_version(ids[kind], protos[kind])
        v = SecretVersion.from_dict(r.get_result())
        emit("create_version", kind=kind, ok=r.get_status_code() == 201, alias=v.alias,
             token=(v.version_custom_metadata or {}).get(TOKEN))

    # 4. current and previous of each, by alias.
    for kind in ("arb", "kv", "up"):
        for alias in ("current", "previous"):
            v = SecretVersion.from_dict(sm.get_secret_version(ids[kind], alias).get_result())
            emit("read_alias", kind=kind, alias=alias, token=(v.version_custom_metadata or {}).get(TOKEN), **data_of(v))

    # 5. The version list, and a version read by its id.
    c = SecretVersionMetadataCollection.from_dict(sm.list_secret_versions(ids["arb"]).get_result())
    listed = sorted(
        [{"alias": v.alias, "token": (v.version_custom_metadata or {}).get(TOKEN), "payload_available": v.payload_available}
         for v in c.versions], key=lambda x: x["token"])
    emit("list_versions", total=c.total_count, versions=listed)
    first = [v for v in c.versions if (v.version_custom_metadata or {}).get(TOKEN) == "tok-a1"][0]
    v = SecretVersion.from_dict(sm.get_secret_version(ids["arb"], first.id).get_result())
    emit("read_by_id", alias=v.alias, **data_of(v))

    # 6. The secret itself: current data.
    s = Secret.from_dict(sm.get_secret(ids["up"]).get_result())
    emit("get_secret", **meta_obs(s), **data_of(s))

    # 7. Paging through a search.
    for n in range(3):
        sm.create_secret(ArbitrarySecretPrototype(name=f"conf-page-{n}", secret_type="arbitrary", payload=VALUES["page"]))
    names, sizes, offset = [], [], 0
    while True:
        page = SecretMetadataPaginatedCollection.from_dict(
            sm.list_secrets(offset=offset, limit=2, search="conf-", groups=["default"]).get_result())
        sizes.append(len(page.secrets))
        names += [x.name for x in page.secrets]
        total = page.total_count
        if page.next is None:
            break
        offset = int(page.next.href.split("offset=")[1].split("&")[0])
    emit("list_paging", total=total, page_sizes=sizes, names=sorted(names))
    page = SecretMetadataPaginatedCollection.from_dict(
        sm.list_secrets(search="conf-page", secret_types=["arbitrary"]).get_result())
    emit("list_filtered", total=page.total_count, names=sorted(x.name for x in page.secrets))

    # 8. Custom metadata: a merge patch (null removes a key).
    m = SecretMetadata.from_dict(sm.update_secret_metadata(
        ids["arb"], ArbitrarySecretMetadataPatch(custom_metadata={"owner": "ops"}).to_dict()).get_result())
    emit("patch_custom_metadata", custom_metadata=m.custom_metadata)
    m = SecretMetadata.from_dict(sm.update_secret_metadata(
        ids["arb"], {"custom_metadata": {"team": None}}).get_result())
    emit("patch_custom_metadata_remove", custom_metadata=m.custom_metadata)

    # 9. Version metadata.
    vm = SecretVersionMetadata.from_dict(sm.update_secret_version_metadata(
        ids["arb"], "current", SecretVersionMetadataPatch(version_custom_metadata={"reviewed": "yes"}).to_dict()).get_result())
    emit("patch_version_metadata", version_custom_metadata=vm.version_custom_metadata)
    vm = SecretVersionMetadata.from_dict(sm.get_secret_version_metadata(ids["arb"], "previous").get_result())
    emit("version_metadata", alias=vm.alias, version_custom_metadata=vm.version_custom_metadata)

    # 10. Errors.
    try:
        sm.get_secret(str(uuid.UUID(int=1)))
        emit("missing_secret", ok=True)
    except Exception as e:  # noqa: BLE001
        emit("missing_secret", ok=False, error=error_class(e))

    # 11. Throttling and server errors: retried, or surfaced after the last attempt.
    before = ops("get_secret_metadata")
    sim("/_sim/faults", {"status": 429, "count": 1, "retry_after": 1})
    m = SecretMetadata.from_dict(sm.get_secret_metadata(ids["kv"]).get_result())
    emit("throttled_read", ok=True, attempts=ops("get_secret_metadata") - before, type=m.secret_type)

    before = ops("get_secret_metadata")
    sim("/_sim/faults", {"status": 503, "count": 1, "retry_after": 1})
    m = SecretMetadata.from_dict(sm.get_secret_metadata(ids["kv"]).get_result())
    emit("server_error_read", ok=True, attempts=ops("get_secret_metadata") - before, type=m.secret_type)

    before = ops("get_secret_metadata")
    sim("/_sim/faults", {"status": 429, "count": 5, "retry_after": 1})
    try:
        sm.get_secret_metadata(ids["kv"])
        emit("throttled_surfaced", ok=True)
    except Exception as e:  # noqa: BLE001
        emit("throttled_surfaced", ok=False, error=error_class(e), attempts=ops("get_secret_metadata") - before)

    # 12. An expired token is refreshed before use: no call is refused.
    exchanges = sim("/_sim/calls")["iam_exchanges"]
    time.sleep(TOKEN_TTL + 0.5)
    m = SecretMetadata.from_dict(sm.get_secret_metadata(ids["kv"]).get_result())
    calls = sim("/_sim/calls")
    emit("token_refresh", ok=True, exchanged=calls["iam_exchanges"] > exchanges,
         rejected_expired=calls["rejected_expired"], rejected_unknown=calls["rejected_unknown"])

    # 13. A wrong API key.
    try:
        client("not-a-key").get_secret_metadata(ids["kv"])
        emit("bad_api_key", ok=True)
    except Exception as e:  # noqa: BLE001
        emit("bad_api_key", ok=False, error=error_class(e))

    # 14. Delete.
    page = SecretMetadataPaginatedCollection.from_dict(sm.list_secrets(search="conf-page-0").get_result())
    r = sm.delete_secret(page.secrets[0].id)
    emit("delete", ok=r.get_status_code() == 204)
    try:
        sm.get_secret_metadata(page.secrets[0].id)
        emit("deleted_read", ok=True)
    except Exception as e:  # noqa: BLE001
        emit("deleted_read", ok=False, error=error_class(e))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"scenario failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
