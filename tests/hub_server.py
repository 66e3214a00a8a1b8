"""A Hugging Face Hub-compatible HTTP server for tests (standard library + PyYAML, state in memory).

It serves the routes the real huggingface_hub client uses to create repos, validate cards, commit
(regular files inline, large/binary files through the LFS batch API), tag, list refs, trees and
models, and resolve files for download. LFS files resolve with a 302 to a second, "CDN" origin,
as on the real Hub, so the client fetches them there without its token. Every request is logged
so tests can count uploads and check the user agent and token use.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

LFS_LIMIT = 10 * 1024 * 1024
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n"
FRONT_MATTER = re.compile(r"^\s*---\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", re.S)
REPO = r"(?P<repo>[^/?]+/[^/?]+)"


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Entry:
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # the blob id the Hub reports (of the LFS pointer for LFS files)
    key: str  # where the bytes are stored: their sha256, unless a test altered them


@dataclass
class Commit:
    sha: str
    files: dict[str, Entry]
    parent: str | None
    message: str
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        sha = self.branches.get(rev) or self.tags.get(rev) or (rev if rev in self.commits else None)
        return self.commits.get(sha) if sha else None


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    user_agent: str


class HubState:
    """Repos, blobs (by sha256) and the request log, behind one lock."""

    def __init__(self, tokens: set[str]):
        self.tokens = tokens
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self.log: list[Request] = []
        self._counter = 0
        self.page_size = 3  # small, so the client's Link-header pagination is exercised

    # -- helpers for tests -------------------------------------------------------------
    def requests(self, method: str | None = None, contains: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.log if (method is None or r.method == method) and contains in r.path]

    def corrupt(self, repo_id: str, path: str, rev: str = "main") -> None:
        """Serve one file of one commit with a byte flipped (same size, same advertised hashes)."""
        with self.lock:
            files = self.repos[repo_id].resolve(rev).files
            data = bytearray(self.blobs[files[path].key])
            data[len(data) // 2] ^= 0xFF
            key = hashlib.sha256(data).hexdigest()
            self.blobs[key] = bytes(data)
            files[path] = replace(files[path], key=key)

    # -- model -------------------------------------------------------------------------
    def store(self, data: bytes, lfs: bool) -> Entry:
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        oid = git_oid(lfs_pointer(sha, len(data))) if lfs else git_oid(data)
        return Entry(sha256=sha, size=len(data), lfs=lfs, git_oid=oid, key=sha)

    def commit(self, repo: Repo, branch: str, files: dict[str, Entry], message: str) -> Commit:
        self._counter += 1
        parent = repo.branches.get(branch)
        seed = json.dumps([repo.repo_id, parent, sorted((p, e.sha256) for p, e in files.items()), self._counter])
        c = Commit(sha=hashlib.sha1(seed.encode()).hexdigest(), files=files, parent=parent, message=message,
                   date=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
        repo.commits[c.sha] = c
        repo.branches[branch] = c.sha
        return c

    def create_repo(self, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_id, private)
        self.repos[repo_id] = repo
        self.commit(repo, "main", {".gitattributes": self.store(GITATTRIBUTES, lfs=False)}, "initial commit")
        return repo

    def card_data(self, commit: Commit) -> dict:
        entry = commit.files.get("README.md")
        if entry is None:
            return {}
        match = FRONT_MATTER.match(self.blobs[entry.key].decode("utf-8", "replace"))
        try:
            data = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError:
            return {}
        return data if isinstance(data, dict) else {}


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def repo_not_found() -> HubError:
    return HubError(404, "Repository not found", "RepoNotFound")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TestHub/1.0"
    state: HubState
    base: str  # this origin, e.g. http://127.0.0.1:1234
    cdn: str  # the CDN origin

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # -- plumbing ----------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        self.body = self._read_body()
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        if url.path == "/api/agent-harnesses":  # the client's own best-effort telemetry, not logged
            self._json({"harnesses": {}})
            return
        with self.state.lock:
            self.state.log.append(Request(method, url.path, self.headers.get("Authorization"),
                                          self.headers.get("User-Agent", "")))
        for verb, pattern, name in self.routes:
            match = re.fullmatch(pattern, url.path)
            if match and method in verb.split("|"):
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                try:
                    with self.state.lock:
                        getattr(self, name)(**args)
                except HubError as e:
                    self._error(e)
                except Exception as e:  # a server bug: answer 500 rather than drop the connection
                    self._error(HubError(500, f"test hub: {type(e).__name__}: {e}"))
                return
        self._error(HubError(404, f"no route for {method} {url.path}"))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, e: HubError) -> None:
        headers = {"X-Error-Message": e.message, **e.headers}
        if e.code:
            headers["X-Error-Code"] = e.code
        self._json({"error": e.message}, e.status, headers)

    def _json_body(self):
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"invalid JSON body: {e}") from e

    # -- auth --------------------------------------------------------------------------
    def _token_ok(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if not auth:
            return False
        if not auth.startswith("Bearer ") or auth[7:] not in self.state.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return True

    def _need_write(self) -> None:
        if not self._token_ok():
            raise HubError(401, "You must be authenticated to write to the Hub")

    def _repo(self, repo_id: str, write: bool = False) -> Repo:
        if write:
            self._need_write()
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and not self._token_ok()):
            raise repo_not_found()
        return repo

    def _rev(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    # -- routes ------------------------------------------------------------------------
    routes = [
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", r"/api/models", "list_models"),
        ("GET", rf"/api/models/{REPO}", "model_info"),
        ("GET", rf"/api/models/{REPO}/revision/(?P<rev>[^/]+)", "model_info"),
        ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
        ("GET", rf"/api/models/{REPO}/refs", "refs"),
        ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", "commit"),
        ("POST", rf"/api/models/{REPO}/tag/(?P<rev>[^/]+)", "tag"),
        ("POST", rf"/{REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
        ("POST", r"/lfs-verify", "lfs_verify"),
        ("GET|HEAD", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    def create_repo(self) -> None:
        self._need_write()
        body = self._json_body()
        repo_id = f"{body['organization']}/{body['name']}"
        url = f"{self.base}/{repo_id}"
        if repo_id in self.state.repos:
            self._json({"error": "You already created this model repo", "url": url}, 409)
            return
        self.state.create_repo(repo_id, private=body.get("visibility") == "private" or bool(body.get("private")))
        self._json({"url": url, "name": repo_id})

    def validate_yaml(self) -> None:
        content = self._json_body().get("content", "")
        match = FRONT_MATTER.match(content)
        if not match:
            self._json({"warnings": [{"message": "empty or missing yaml metadata in repo card"}]})
            return
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError as e:
            self._json({"errors": [{"message": f"Invalid YAML in README.md: {e}"}]}, 400)
            return
        if data is not None and not isinstance(data, dict):
            self._json({"errors": [{"message": "YAML metadata must be a mapping"}]}, 400)
            return
        self._json({})

    def _info(self, repo: Repo, commit: Commit, card: bool) -> dict:
        meta = self.state.card_data(commit)
        tags = list(meta.get("tags") or []) + ([meta["library_name"]] if meta.get("library_name") else [])
        tags += [f"dataset:{d}" for d in meta.get("datasets") or []]
        info = {"_id": commit.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0], "sha": commit.sha, "lastModified": commit.date,
                "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
                "tags": tags, "library_name": meta.get("library_name"), "pipeline_tag": meta.get("pipeline_tag"),
                "siblings": [{"rfilename": p} for p in sorted(commit.files)]}
        if card:
            info["cardData"] = meta
        return info

    def model_info(self, repo: str, rev: str = "main") -> None:
        r = self._repo(repo)
        self._json(self._info(r, self._rev(r, rev), card=True))

    def list_models(self) -> None:
        q = self.query
        author, filters = (q.get("author") or [None])[0], q.get("filter", [])
        card = (q.get("cardData") or q.get("full") or ["false"])[0].lower() == "true"
        authed = self._token_ok()
        items = []
        for repo in sorted(self.state.repos.values(), key=lambda r: r.repo_id):
            if (author and repo.repo_id.split("/")[0] != author) or (repo.private and not authed):
                continue
            info = self._info(repo, repo.commits[repo.branches["main"]], card)
            if all(f in info["tags"] for f in filters):
                info.pop("siblings")
                items.append(info)
        self._page(items)

    def _page(self, items: list) -> None:
        start = int((self.query.get("cursor") or ["0"])[0])
        end = start + self.state.page_size
        headers = {}
        if end < len(items):
            params = {k: v for k, v in self.query.items() if k != "cursor"}
            query = "&".join(f"{k}={quote(x)}" for k, vs in params.items() for x in vs)
            path = urlsplit(self.path).path
            headers["Link"] = f'<{self.base}{path}?{query}&cursor={end}>; rel="next"'
        self._json(items[start:end], headers=headers)

    def tree(self, repo: str, rev: str, path: str | None = None) -> None:
        commit = self._rev(self._repo(repo), rev)
        prefix = f"{path.strip('/')}/" if path else ""
        recursive = (self.query.get("recursive") or ["false"])[0].lower() == "true"
        under = {p: e for p, e in commit.files.items() if p.startswith(prefix)}
        if path and not under:
            raise HubError(404, f"{path} does not exist", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        dirs = {"/".join(p.split("/")[:i]) for p in under for i in range(1, p.count("/") + 1)}
        dirs = {d for d in dirs if d.startswith(prefix) and d != prefix.rstrip("/")}
        if not recursive:
            depth = prefix.count("/")
            under = {p: e for p, e in under.items() if p.count("/") == depth}
            dirs = {d for d in dirs if d.count("/") == depth}
        items = [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                 for d in sorted(dirs)]
        for p, e in sorted(under.items()):
            item = {"type": "file", "oid": e.git_oid, "size": e.size, "path": p}
            if e.lfs:
                item["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(lfs_pointer(e.sha256, e.size))}
            items.append(item)
        self._page(items)

    def refs(self, repo: str) -> None:
        r = self._repo(repo)

        def group(refs, kind):
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": s} for n, s in sorted(refs.items())]

        self._json({"branches": group(r.branches, "heads"), "tags": group(r.tags, "tags"), "converts": [],
                    "pullRequests": []})

    def preupload(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        commit = self._rev(r, rev)
        lfs_globs = self._lfs_globs(commit)
        out = []
        for f in self._json_body()["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["size"] >= LFS_LIMIT or b"\0" in sample or any(fnmatch.fnmatch(f["path"].split("/")[-1], g) for g in lfs_globs)
            old = commit.files.get(f["path"])
            oid = None if old is None else (old.sha256 if old.lfs else old.git_oid)
            out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._json({"files": out, "commitOid": commit.sha})

    def _lfs_globs(self, commit: Commit) -> list[str]:
        entry = commit.files.get(".gitattributes")
        text = self.state.blobs[entry.key].decode() if entry else ""
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line]

    def lfs_batch(self, repo: str) -> None:
        self._repo(repo, write=True)
        objects = []
        for obj in self._json_body()["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.state.blobs:  # already stored: no action, nothing is uploaded
                item["actions"] = {"upload": {"href": f"{self.cdn}/lfs/{obj['oid']}", "header": {}},
                                   "verify": {"href": f"{self.base}/lfs-verify", "header": {}}}
            objects.append(item)
        self._json({"transfer": "basic", "objects": objects})

    def lfs_verify(self) -> None:
        self._need_write()
        body = self._json_body()
        data = self.state.blobs.get(body["oid"])
        if data is None or len(data) != body["size"]:
            raise HubError(404, f"LFS object {body['oid']} was not uploaded")
        self._json({})

    def commit(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        if rev not in r.branches:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, r.branches[rev]):
            raise HubError(412, "A commit has happened since the parent commit: pull and retry")
        files = dict(r.commits[r.branches[rev]].files)
        for op in lines[1:]:
            self._apply(files, op["key"], op["value"])
        c = self.state.commit(r, rev, files, header.get("summary", ""))
        self._json({"commitUrl": f"{self.base}/{repo}/commit/{c.sha}", "commitOid": c.sha, "pullRequestUrl": None})

    def _apply(self, files: dict[str, Entry], key: str, value: dict) -> None:
        path = value["path"]
        if key == "file":
            files[path] = self.state.store(base64.b64decode(value["content"]), lfs=False)
        elif key == "lfsFile":
            data = self.state.blobs.get(value["oid"])
            if data is None or len(data) != value.get("size", len(data)):
                raise HubError(400, f"LFS object {value['oid']} of {path} was never uploaded")
            files[path] = self.state.store(data, lfs=True)
        elif key == "deletedFile":
            if path not in files:
                raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            del files[path]
        elif key == "deletedFolder":
            for p in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                del files[p]
        else:
            raise HubError(400, f"unknown commit operation {key}")

    def tag(self, repo: str, rev: str) -> None:
        r = self._repo(repo, write=True)
        commit = self._rev(r, rev)
        name = self._json_body()["tag"]
        if name in r.tags:
            raise HubError(409, f"Tag {name} already exists")
        r.tags[name] = commit.sha
        self._json({})

    def resolve(self, repo: str, rev: str, path: str) -> None:
        commit = self._rev(self._repo(repo), rev)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{entry.git_oid}"'}
        if entry.lfs:
            headers.update({"Location": f"{self.cdn}/lfs/{entry.key}", "X-Linked-Etag": f'"{entry.sha256}"',
                            "X-Linked-Size": str(entry.size)})
            self._send(302, b"", headers)
        else:
            self._send(200, self.state.blobs[entry.key], headers, ctype="application/octet-stream")


class CdnHandler(Handler):
    """Storage on another origin: presigned-style LFS uploads and downloads, no token needed."""

    routes = [("PUT", r"/lfs/(?P<oid>[0-9a-f]{64})", "upload"), ("GET|HEAD", r"/lfs/(?P<oid>[0-9a-f]{64})", "download")]

    def upload(self, oid: str) -> None:
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        self.state.blobs[oid] = self.body
        self._send(200)

    def download(self, oid: str) -> None:
        data = self.state.blobs.get(oid)
        if data is None:
            raise HubError(404, "no such object")
        self._send(200, data, {"ETag": f'"{oid}"'}, ctype="application/octet-stream")


class HubServer:
    """Start with `with HubServer(tokens={"hf_x"}) as hub:`; `hub.url` is the endpoint."""

    def __init__(self, tokens: set[str] | None = None):
        self.state = HubState(set(tokens or ()))
        self._servers: list[ThreadingHTTPServer] = []

    def __enter__(self) -> "HubServer":
        cdn = self._start(CdnHandler)
        self.cdn_url = f"http://127.0.0.1:{cdn.server_address[1]}"
        main = self._start(Handler)
        self.url = f"http://127.0.0.1:{main.server_address[1]}"
        for server in self._servers:
            server.RequestHandlerClass.base = self.url
            server.RequestHandlerClass.cdn = self.cdn_url
        return self

    def _start(self, handler: type[Handler]) -> ThreadingHTTPServer:
        cls = type(handler.__name__, (handler,), {"state": self.state})
        server = ThreadingHTTPServer(("127.0.0.1", 0), cls)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return server

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
