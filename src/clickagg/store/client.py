"""A small typed SolrCloud client over plain HTTP, for writing and reading aggregate documents.

SolrCloud's HTTP API is all clickagg needs (configsets, collections, JSON updates, queries,
JSON facets, /export and /stream), so a thin `requests` client is enough and keeps the jobs
free of a JVM client. Every failure, from Solr or from the network, raises `errors.SolrError`
naming the collection it was about; `errors.SolrUnreachable` when no answer came;
`errors.SolrAuthError` when Solr refused the user (401) or its role (403);
`errors.SolrTlsError` when an https node's certificate fails verification. Without explicit
`auth`, a client sends the credentials of the environment (`credentials.from_environment`);
without explicit `ca_file`, it verifies https against the CA bundle the environment names
(`credentials.ca_file_from_environment`), or the system's CAs. It never skips verification.
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
import io
import json
import re
import urllib.parse
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from requests import adapters
from urllib3.util import retry

from clickagg import errors
from clickagg.store import credentials

Doc = dict[str, Any]
Params = Mapping[str, str | int | float | bool | Sequence[str]]

# (connect, read) seconds. Reads are long enough for a collection CREATE on a busy 2-core box.
DEFAULT_TIMEOUT = (5.0, 120.0)
_STREAM_CHUNK = 64 * 1024
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_JSON = {"Content-Type": "application/json"}
_AS_IS = frozenset({str, int, float, bool, type(None)})  # JSON values as they are
_LEADER_FIRST = "replica.leader:true"  # shards.preference: the leader, where there is one


class SolrClient:
    """One SolrCloud, reached through one node's base URL (http://host:port/solr)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        connect_retries: int = 3,
        auth: tuple[str, str] | credentials.SolrCredentials | None = None,
        connections: int = 10,
        ca_file: Path | None = None,
    ) -> None:
        """`auth` is basic auth (user, password), by default the environment's, sent with every
        request; `connections` bounds the pooled connections kept for threads that share this
        client; `ca_file` is the PEM bundle https is verified against, by default the
        environment's (`$CLICKAGG_SOLR_CA_FILE`), else the system's CAs."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = _session_with_retries(connect_retries, connections)
        found_ca = (
            credentials.ca_file_from_environment()
            if ca_file is None
            else credentials.checked_ca_file(ca_file)
        )
        self.ca_file = found_ca
        # A path, or True (the system's CAs): never False. Passed with each request, because
        # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override a session's `verify`.
        self._verify: str | bool = str(found_ca) if found_ca is not None else True
        found = credentials.from_environment() if auth is None else auth
        pair = found.pair() if isinstance(found, credentials.SolrCredentials) else found
        self.user = pair[0] if pair else None
        self._session.auth = pair
        self._auth = pair
        self._connections = connections
        #: Bytes of the JSON responses this client has read, as they came over the wire.
        self.received_bytes = 0

    def for_node(self, base_url: str) -> SolrClient:
        """A client for another node of the same SolrCloud: the same credentials, CA and
        timeouts (a read that must be served by one particular replica)."""
        return SolrClient(
            base_url,
            timeout=self.timeout,
            auth=self._auth,
            connections=self._connections,
            ca_file=self.ca_file,
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SolrClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- cluster -------------------------------------------------------------------------------

    def ping(self, *, refused_raises: bool = False) -> bool:
        """True when the node answers its health check (it is live in ZooKeeper). A refused
        login is False too, or `SolrAuthError` with `refused_raises`."""
        try:
            self._get_json("admin/info/health", {}, collection=None)
        except errors.SolrAuthError:
            if refused_raises:
                raise
            return False
        except errors.SolrError:
            return False
        return True

    def cluster_status(self) -> dict[str, Any]:
        """CLUSTERSTATUS's `cluster` part: live_nodes, collections, aliases, ..."""
        body = self._get_json("admin/collections", {"action": "CLUSTERSTATUS"}, collection=None)
        return dict(body["cluster"])

    def upload_configset(self, name: str, directory: Path) -> None:
        """Upload (or replace) configset `name` from the files in `directory`."""
        params = {"action": "UPLOAD", "name": name, "overwrite": "true", "cleanup": "true"}
        self._json_call(
            "POST",
            "admin/configs",
            collection=None,
            params=params,
            data=_zip_directory(directory),
            headers={"Content-Type": "application/octet-stream"},
        )

    def list_collections(self) -> list[str]:
        body = self._get_json("admin/collections", {"action": "LIST"}, collection=None)
        return [str(name) for name in body.get("collections", [])]

    def create_collection(
        self,
        name: str,
        configset: str,
        shards: int,
        replication_factor: int,
        *,
        listed: bool = False,
    ) -> None:
        """Create the collection and wait until its replicas are active; no-op if it exists.
        `listed`: the caller has just seen it missing, so it is not listed again first."""
        if not listed and name in self.list_collections():
            return
        params: dict[str, str | int] = {
            "action": "CREATE",
            "name": name,
            "collection.configName": configset,
            "numShards": shards,
            "replicationFactor": replication_factor,
            "waitForFinalState": "true",
        }
        try:
            self._get_json("admin/collections", params, collection=name)
        except errors.SolrError:
            # Someone else may have created it meanwhile; that is success too.
            if name not in self.list_collections():
                raise

    def delete_collection(self, name: str) -> None:
        """Delete the collection and its data; no-op if it does not exist."""
        if name not in self.list_collections():
            return
        try:
            self._get_json("admin/collections", {"action": "DELETE", "name": name}, name)
        except errors.SolrError:
            if name in self.list_collections():
                raise

    # --- writes --------------------------------------------------------------------------------

    def add(
        self, collection: str, docs: Iterable[Doc], *, commit_within_ms: int | None = None
    ) -> None:
        """Add or replace documents by id.

        bytes values are sent base64-encoded (Solr's form for binary fields) and datetimes
        as UTC ISO-8601 instants.
        """
        params: dict[str, str | int] = {"wt": "json"}
        if commit_within_ms is not None:
            params["commitWithin"] = commit_within_ms
        body = json.dumps([_encode_doc(doc) for doc in docs])
        self._json_call(
            "POST",
            f"{_quote(collection)}/update",
            collection=collection,
            params=params,
            data=body.encode(),
            headers=_JSON,
        )

    def delete_by_query(self, collection: str, query: str) -> None:
        """Delete every document matching a Lucene query."""
        self._json_call(
            "POST",
            f"{_quote(collection)}/update",
            collection=collection,
            params={"wt": "json"},
            data=json.dumps({"delete": {"query": query}}).encode(),
            headers=_JSON,
        )

    def commit(self, collection: str) -> None:
        """A hard commit that opens a new searcher: every write so far becomes visible."""
        self._json_call(
            "POST",
            f"{_quote(collection)}/update",
            collection=collection,
            params={"commit": "true", "wt": "json"},
            data=b"{}",
            headers=_JSON,
        )

    # --- reads ---------------------------------------------------------------------------------

    def query(self, collection: str, params: Params) -> dict[str, Any]:
        """A /select request; the whole JSON response (parameters are sent as a form)."""
        return self._json_call(
            "POST",
            f"{_quote(collection)}/select",
            collection=collection,
            data=_form(params),
            headers=_FORM,
        )

    def get(
        self, collection: str, ids: Sequence[str], fl: str = "*", *, distrib: bool = True
    ) -> list[Doc]:
        """Documents by id through real-time get: the newest version, committed or not.

        Asked of each shard's leader: the writers read, add and overwrite, and a replica
        still recovering after a node restart may lack updates the leader acknowledged.
        With `distrib=False`, `collection` names a core, and that core alone answers."""
        if not ids:
            return []
        params: dict[str, str | list[str]] = {"id": list(ids), "fl": fl, "wt": "json"}
        if distrib:
            params["shards.preference"] = _LEADER_FIRST
        else:
            params["distrib"] = "false"
        body = self._json_call(
            "POST",
            f"{_quote(collection)}/get",
            collection=collection,
            data=_form(params),
            headers=_FORM,
        )
        if "doc" in body:  # one id: Solr answers {"doc": {...}} or {"doc": null}
            return [body["doc"]] if body["doc"] else []
        return list(body.get("response", {}).get("docs", []))

    def json_facet(
        self,
        collection: str,
        query: str,
        facet: Mapping[str, Any],
        *,
        filters: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Run a JSON Facet request; returns its `facets` part (count plus one key per facet)."""
        request = {"query": query, "filter": list(filters), "limit": 0, "facet": dict(facet)}
        body = self._json_call(
            "POST",
            f"{_quote(collection)}/select",
            collection=collection,
            data=json.dumps(request).encode(),
            headers=_JSON,
        )
        return dict(body.get("facets", {}))

    def export(self, collection: str, q: str, fl: Sequence[str], sort: str) -> Iterator[Doc]:
        """Every matching document, sorted, streamed from /export.

        /export answers for one core only, so it runs as a streaming `search(qt="/export")`,
        which asks /export on every shard and merges their sorted streams.
        """
        expr = (
            f"search({collection}, q={_expr_string(q)}, fl={_expr_string(','.join(fl))}, "
            f'sort={_expr_string(sort)}, qt="/export")'
        )
        return self.stream(collection, expr)

    def stream(self, collection: str, expr: str) -> Iterator[Doc]:
        """The tuples of a streaming expression, read incrementally, without the EOF tuple."""
        response = self._call(
            "POST",
            f"{_quote(collection)}/stream",
            collection=collection,
            data=_form({"expr": expr, "indent": "off"}),
            headers=_FORM,
            stream=True,
        )
        return _tuples(response, collection)

    # --- HTTP ----------------------------------------------------------------------------------

    def _get_json(self, path: str, params: Params, collection: str | None) -> dict[str, Any]:
        return self._json_call("GET", path, collection=collection, params=params)

    def _json_call(
        self,
        method: str,
        path: str,
        *,
        collection: str | None,
        params: Params | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self._call(
            method, path, collection=collection, params=params, data=data, headers=headers
        )
        body = _json_body(response, collection)
        # urllib3 counts what it read from the socket (compressed, if Solr compressed it).
        self.received_bytes += response.raw.tell() or len(response.content)
        _raise_for_failure(body, collection, method, path)
        return body

    def _call(
        self,
        method: str,
        path: str,
        *,
        collection: str | None,
        params: Params | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        url = f"{self.base_url}/{path}"
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                data=data,
                headers=dict(headers or {}),
                timeout=self.timeout,
                stream=stream,
                verify=self._verify,
            )
        except requests.exceptions.SSLError as exc:
            raise _tls_failure(self.base_url, self.ca_file, collection, exc) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            if _speaks_tls(self.base_url, exc):
                raise errors.SolrTlsError(
                    f"{_about(collection)}Solr at {self.base_url} answered a plain http request "
                    "with TLS: it serves https only, use an https:// URL"
                ) from exc
            raise errors.SolrUnreachable(
                f"{_about(collection)}Solr at {self.base_url} could not be reached: {exc}"
            ) from exc
        except requests.RequestException as exc:
            raise errors.SolrError(
                f"{_about(collection)}Solr at {self.base_url} could not be reached: {exc}"
            ) from exc
        if response.status_code in (401, 403):
            response.close()
            request = f"{method} /{path}"
            status = response.status_code
            raise _refused(self.base_url, self.user, status, request, collection, params)
        if response.status_code >= 400:
            message = _error_message(response)
            response.close()
            raise errors.SolrError(
                f"{_about(collection)}{method} /{path} failed with HTTP "
                f"{response.status_code}: {message}"
            )
        return response


def _session_with_retries(connect_retries: int, connections: int) -> requests.Session:
    # Retry only when the connection could not be made: the request never reached Solr,
    # so even an update is safe to resend. Answers and read time-outs are not retried.
    policy = retry.Retry(
        total=None,
        connect=connect_retries,
        read=0,
        status=0,
        other=0,
        backoff_factor=0.3,
        raise_on_status=False,
    )
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapters.HTTPAdapter(max_retries=policy, pool_maxsize=connections))
    return session


def _tls_failure(
    base_url: str, ca_file: Path | None, collection: str | None, exc: Exception
) -> errors.SolrTlsError:
    """What a failed TLS handshake means: which CA bundle was used, and how to name another."""
    trusted = f"the CA bundle {ca_file}" if ca_file else "the system's CAs"
    return errors.SolrTlsError(
        f"{_about(collection)}Solr at {base_url}: TLS verification against {trusted} failed "
        f"({_tls_reason(exc)}); set ${credentials.CA_FILE_ENV} to the PEM file of the CA "
        "that signed Solr's certificate"
    )


def _tls_reason(exc: Exception) -> str:
    """The innermost SSL error's words (urllib3 wraps it twice), without OpenSSL's source line."""
    text = str(exc)
    match = re.search(r"\[SSL[^\]]*\]\s*([^(')\"]+)", text)
    return match.group(1).strip() if match else text[:300]


def _speaks_tls(base_url: str, exc: Exception) -> bool:
    """Whether a plain-http request got a TLS record back (an https-only port)."""
    # A TLS alert record starts with 0x15 0x03; http.client reports it as a bad status line.
    return base_url.startswith("http://") and "\\x15\\x03" in str(exc)


def _refused(
    base_url: str,
    user: str | None,
    status: int,
    request: str,
    collection: str | None,
    params: Params | None,
) -> errors.SolrAuthError:
    """What a 401 or 403 means for `request` (GET /path): which user, which permission."""
    permission = _permission(request.partition(" /")[2], params or {})
    if status == 401 and user is None:
        message = (
            f"Solr at {base_url} requires authentication and no credentials were sent "
            f"({request}): set ${credentials.USERNAME_ENV} and ${credentials.PASSWORD_ENV} "
            f"(or ${credentials.PASSWORD_FILE_ENV})"
        )
    elif status == 401:
        message = (
            f"Solr at {base_url} refused user '{user}' (HTTP 401, {request}): "
            "wrong user name or password"
        )
    else:
        message = (
            f"Solr at {base_url} refused user '{user}' (HTTP 403, {request}): "
            f"its role lacks the permission '{permission}'"
        )
    return errors.SolrAuthError(
        _about(collection) + message, user=user, status=status, permission=permission
    )


def _permission(path: str, params: Params) -> str:
    """The Solr permission (security.json's predefined names) a request to `path` needs."""
    handler = path.rsplit("/", 1)[-1]
    action = str(params.get("action", "")).upper()
    if path == "admin/collections":
        reads = {"LIST", "CLUSTERSTATUS", "COLSTATUS", "LISTALIASES", "REQUESTSTATUS"}
        return "collection-admin-read" if action in reads else "collection-admin-edit"
    if path == "admin/configs":
        return "config-read" if action == "LIST" else "config-edit"
    if path == "admin/info/health":
        return "health"
    if handler == "update":
        return "update"
    if handler in {"select", "get", "stream", "export", "query"}:
        return "read"
    return f"a permission for /{path}"


def _about(collection: str | None) -> str:
    return f"collection '{collection}': " if collection else ""


def _quote(collection: str) -> str:
    return urllib.parse.quote(collection, safe="")


def _form(params: Params) -> bytes:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, _param_text(v)) for v in values)
    return urllib.parse.urlencode(pairs).encode()


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expr_string(value: str) -> str:
    """A streaming-expression string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode_doc(doc: Mapping[str, Any]) -> Doc:
    return {key: _encode_value(value) for key, value in doc.items()}


def encode_binary(value: bytes | bytearray) -> str:
    """A binary field's value as Solr reads it in JSON: base64."""
    return base64.b64encode(value).decode("ascii")


def encode_instant(value: dt.datetime) -> str:
    """A date field's value as Solr reads it in JSON: a UTC ISO-8601 instant."""
    utc = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode_value(value: Any) -> Any:
    if type(value) in _AS_IS:  # nearly every value: no isinstance chain per field
        return value
    if isinstance(value, bytes | bytearray):
        return encode_binary(value)
    if isinstance(value, dt.datetime):
        return encode_instant(value)
    if isinstance(value, list | tuple):
        return [_encode_value(item) for item in value]
    return value


def _zip_directory(directory: Path) -> bytes:
    if not directory.is_dir():
        raise errors.SolrError(f"configset directory {directory} does not exist")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _json_body(response: requests.Response, collection: str | None) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise errors.SolrError(
            f"{_about(collection)}Solr answered with something other than JSON: "
            f"{response.text[:300]!r}"
        ) from exc
    if not isinstance(body, dict):
        raise errors.SolrError(f"{_about(collection)}unexpected Solr answer: {body!r:.300}")
    return body


def _raise_for_failure(
    body: Mapping[str, Any], collection: str | None, method: str, path: str
) -> None:
    # The Collections API can answer 200 and still report failures per node.
    problem = body.get("error") or body.get("failure") or body.get("exception")
    status = body.get("responseHeader", {}).get("status", 0)
    if problem or status:
        raise errors.SolrError(f"{_about(collection)}{method} /{path} failed: {problem or body}")


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _html_title(response.text) or response.text.strip()[:500] or response.reason
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("msg"):
            return _one_line(str(error["msg"]))
        tuples = body.get("result-set", {}).get("docs", [])
        for item in tuples:
            if isinstance(item, dict) and "EXCEPTION" in item:
                return str(item["EXCEPTION"])
    return json.dumps(body)[:500]


def _one_line(message: str) -> str:
    # A distributed update wraps the replica's answer in a multi-line "Async exception";
    # the replica's own words are what the reader needs.
    remote = message.rpartition("Remote error message:")[2]
    return " ".join(remote.split())


def _html_title(text: str) -> str | None:
    # Jetty answers an unknown collection or handler with an HTML page.
    match = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return match.group(1).strip() if match else None


def _tuples(response: requests.Response, collection: str) -> Iterator[Doc]:
    """Decode `{"result-set":{"docs":[t1, t2, ..., {"EOF":true}]}}` tuple by tuple."""
    try:
        for item in _array_items(_text_chunks(response), '"docs":['):
            if "EXCEPTION" in item:
                raise errors.SolrError(
                    f"{_about(collection)}streaming expression failed: {item['EXCEPTION']}"
                )
            if item.get("EOF"):
                return
            yield item
        raise errors.SolrError(f"{_about(collection)}the stream ended without an EOF tuple")
    except requests.RequestException as exc:
        raise errors.SolrError(f"{_about(collection)}reading the stream failed: {exc}") from exc
    finally:
        response.close()


def _text_chunks(response: requests.Response) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in response.iter_content(chunk_size=_STREAM_CHUNK):
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _array_items(chunks: Iterator[str], opening: str) -> Iterator[Doc]:
    """The objects of the first JSON array that follows `opening`, as the text arrives.

    A partial object at the end of the buffer fails to decode; more text is read and the
    decode is tried again, so memory stays at one chunk plus one object.
    """
    decoder = json.JSONDecoder()
    buffer = ""
    position = -1
    for chunk in chunks:
        buffer += chunk
        if position < 0:
            start = buffer.find(opening)
            if start < 0:
                continue
            buffer = buffer[start + len(opening) :]
            position = 0
        while True:
            position = _skip_separators(buffer, position)
            if position >= len(buffer) or buffer[position] == "]":
                break
            try:
                item, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError:
                break  # incomplete: wait for more text
            yield item
            position = end
        buffer, position = buffer[position:], 0
        if buffer.startswith("]"):
            return


def _skip_separators(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n,":
        position += 1
    return position
