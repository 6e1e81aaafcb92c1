"""Prebuilt indexes: checksum-verified downloads from a local HTTP server, safe extraction, local builds.

Every refused archive must leave the cache exactly as it was: the tests compare a listing of the
whole cache (hidden files included, with sizes, contents and link targets) before and after.
"""

import functools
import hashlib
import http.server
import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from pyserini_llama import prebuilt_indexes as pi
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.prebuilt_indexes import registry
from pyserini_llama.prebuilt_indexes.__main__ import main as cli_main

NAME = "test-v1.0.0-tiny.faiss"
GOOD_FILES = {"index": b"not really faiss but bytes", "docid": b"d1\nd2\nd3\n"}


# --- helpers ---------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_gz(members: list[tuple]) -> bytes:
    """Members: ("file", name, bytes) | ("dir", name) | ("symlink", name, target) | ("hardlink", name, target)
    | ("chardev", name)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for kind, name, *rest in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chardev": tarfile.CHRTYPE,
            }[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            if rest:
                info.linkname = rest[0]
            tar.addfile(info)
    return buffer.getvalue()


def good_members(top: str = "faiss-flat.tiny") -> list[tuple]:
    return [("dir", top)] + [("file", f"{top}/{name}", data) for name, data in GOOD_FILES.items()]


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything under ``root`` (hidden entries too): type, size, content hash, link target."""
    if not root.exists():
        return {}
    listing = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                listing[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                listing[rel] = ("dir",)
            else:
                listing[rel] = ("file", st.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return listing


class Server:
    """``http.server`` on 127.0.0.1 with an ephemeral port, serving ``root`` from a thread."""

    def __init__(self, root: Path):
        handler = functools.partial(QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
            self.running = False


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = Server(root)
    yield root, server
    server.stop()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def register(monkeypatch):
    """Register an entry for the duration of one test."""

    def add(**fields) -> pi.PrebuiltIndex:
        fields.setdefault("name", NAME)
        fields.setdefault("description", "a test index")
        fields.setdefault("kind", "faiss")
        fields.setdefault("model", "tiny-encoder")
        fields.setdefault("collection", "beir/tiny")
        entry = pi.PrebuiltIndex(**fields)
        monkeypatch.setitem(registry.REGISTRY, entry.name, entry)
        return entry

    return add


def publish(served, filename: str, data: bytes) -> str:
    root, server = served
    (root / filename).write_bytes(data)
    return f"{server.url}/{filename}"


def install_good(served, register, cache, name: str = "other-v1.0.0-tiny.faiss") -> Path:
    """A first, good index in the cache, so refusals are checked against a non-empty cache."""
    data = tar_gz(good_members())
    register(name=name, urls=[publish(served, f"{name}.tar.gz", data)], checksum=sha256(data))
    return pi.get_prebuilt_index(name, cache_dir=cache)


# --- downloads -------------------------------------------------------------------------------------


def test_good_archive_installs_and_is_reused_without_network(served, register, cache):
    data = tar_gz(good_members())
    entry = register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data), size=len(data), documents=3)
    assert pi.cached_index_path(NAME, cache) is None

    path = pi.get_prebuilt_index(NAME, cache_dir=cache)

    assert path == cache / "indexes" / f"{NAME}.{hashlib.sha256(data).hexdigest()}"
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != pi.MANIFEST} == GOOD_FILES
    manifest = json.loads((path / pi.MANIFEST).read_text())
    assert manifest["name"] == NAME and manifest["source"] == "download" and manifest["checksum"] == entry.checksum
    assert manifest["documents"] == 3
    assert sorted(os.listdir(cache / "indexes")) == [path.name]  # no staging dir, no archive left behind

    served[1].stop()
    before = snapshot(cache)
    assert pi.get_prebuilt_index(NAME, cache_dir=cache) == path
    assert pi.cached_index_path(NAME, cache) == path
    assert snapshot(cache) == before


def test_cache_defaults_to_pyserini_cache_env(served, register, tmp_path, monkeypatch):
    data = tar_gz(good_members())
    register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data))
    monkeypatch.setenv("PYSERINI_CACHE", str(tmp_path / "env-cache"))
    path = pi.get_prebuilt_index(NAME)
    assert path.parent == tmp_path / "env-cache" / "indexes"


BAD_ARCHIVES = {
    "dotdot": (good_members() + [("file", "../evil", b"pwned")], r"unsafe archive member '\.\./evil'.*'\.\.'"),
    "dotdot-inside": (good_members() + [("file", "faiss-flat.tiny/../../evil", b"x")], r"'\.\.' path component"),
    "absolute": (good_members() + [("file", "/tmp/pyserini-llama-evil", b"pwned")], r"absolute path"),
    "symlink-out": (
        good_members() + [("symlink", "faiss-flat.tiny/escape", "../../outside")],
        r"'faiss-flat\.tiny/escape'.*points outside",
    ),
    "symlink-absolute": (good_members() + [("symlink", "faiss-flat.tiny/etc", "/etc")], r"absolute path '/etc'"),
    "hardlink-out": (good_members() + [("hardlink", "faiss-flat.tiny/h", "../secret")], r"points outside"),
    "under-symlink": (
        good_members() + [("symlink", "faiss-flat.tiny/here", "."), ("file", "faiss-flat.tiny/here/x", b"x")],
        r"beneath the link 'faiss-flat\.tiny/here'",
    ),
    "device": (good_members() + [("chardev", "faiss-flat.tiny/null")], r"device file"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_unsafe_archives_are_refused_and_leave_the_cache_untouched(case, served, register, cache, tmp_path):
    install_good(served, register, cache)
    before = snapshot(cache)
    members, message = BAD_ARCHIVES[case]
    data = tar_gz(members)
    register(urls=[publish(served, "bad.tar.gz", data)], checksum=sha256(data))

    with pytest.raises(pi.PrebuiltIndexError, match=f"prebuilt index '{NAME}'.*{message}"):
        pi.get_prebuilt_index(NAME, cache_dir=cache)

    assert snapshot(cache) == before
    assert not (tmp_path / "evil").exists() and not (cache / "evil").exists()
    assert not Path("/tmp/pyserini-llama-evil").exists()


def test_wrong_checksum_is_refused_and_leaves_the_cache_untouched(served, register, cache):
    install_good(served, register, cache)
    before = snapshot(cache)
    data = tar_gz(good_members())
    url = publish(served, "tiny.tar.gz", data)
    register(urls=[url], checksum=sha256(b"other bytes"))

    with pytest.raises(pi.PrebuiltIndexError) as raised:
        pi.get_prebuilt_index(NAME, cache_dir=cache)

    message = str(raised.value)
    assert f"prebuilt index '{NAME}'" in message and url in message
    assert f"sha256 mismatch: expected {hashlib.sha256(b'other bytes').hexdigest()}" in message
    assert hashlib.sha256(data).hexdigest() in message
    assert snapshot(cache) == before


def test_md5_checksums_are_accepted_and_checked(served, register, cache):
    data = tar_gz(good_members())
    url = publish(served, "tiny.tar.gz", data)
    register(urls=[url], checksum="md5:" + hashlib.md5(data).hexdigest())
    path = pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert path.name == f"{NAME}.{hashlib.md5(data).hexdigest()}"
    register(name="wrong-md5", urls=[url], checksum="md5:" + "0" * 32)
    with pytest.raises(pi.PrebuiltIndexError, match="md5 mismatch"):
        pi.get_prebuilt_index("wrong-md5", cache_dir=cache)


def test_truncated_archive_is_refused_and_leaves_no_trace(served, register, cache):
    data = tar_gz(good_members() + [("file", "faiss-flat.tiny/big", os.urandom(200_000))])
    truncated = data[: len(data) // 2]
    register(urls=[publish(served, "tiny.tar.gz", truncated)], checksum=sha256(truncated))

    with pytest.raises(pi.PrebuiltIndexError, match=f"'{NAME}': archive tiny.tar.gz is truncated or corrupt"):
        pi.get_prebuilt_index(NAME, cache_dir=cache)

    assert not cache.exists()  # the cache directories this call created are gone again


def test_size_mismatch_is_reported(served, register, cache):
    data = tar_gz(good_members())
    register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data), size=len(data) + 1)
    with pytest.raises(pi.PrebuiltIndexError, match=f"got {len(data)} bytes, the registry expects {len(data) + 1}"):
        pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert not cache.exists()


def test_mirror_fallback_uses_the_second_url(served, register, cache):
    data = tar_gz(good_members())
    good = publish(served, "tiny.tar.gz", data)
    missing = f"{served[1].url}/missing.tar.gz"
    register(urls=[missing, good], checksum=sha256(data))

    path = pi.get_prebuilt_index(NAME, cache_dir=cache)

    assert json.loads((path / pi.MANIFEST).read_text())["url"] == good
    assert (path / "docid").read_bytes() == GOOD_FILES["docid"]


def test_all_mirrors_failing_lists_every_attempt(served, register, cache):
    data = tar_gz(good_members())
    corrupt_mirror = publish(served, "tiny.tar.gz", data[:-10])
    missing = f"{served[1].url}/missing.tar.gz"
    register(urls=[missing, corrupt_mirror, "ftp://example.invalid/x.tar.gz"], checksum=sha256(data))

    with pytest.raises(pi.PrebuiltIndexError) as raised:
        pi.get_prebuilt_index(NAME, cache_dir=cache)

    message = str(raised.value)
    assert "no verified archive from 3 URL(s)" in message
    assert f"{missing} (HTTP 404" in message
    assert f"{corrupt_mirror} (sha256 mismatch" in message
    assert "unsupported URL scheme 'ftp'" in message
    assert not cache.exists()


def test_file_urls_and_flat_archives(tmp_path, register, cache):
    """A local mirror (file://) and an archive without a top-level directory."""
    data = tar_gz([("file", name, content) for name, content in GOOD_FILES.items()])
    archive = tmp_path / "flat.tar.gz"
    archive.write_bytes(data)
    register(urls=[archive.as_uri()], checksum=sha256(data))
    path = pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert (path / "index").read_bytes() == GOOD_FILES["index"]


def test_links_inside_the_archive_are_kept(served, register, cache):
    data = tar_gz(good_members() + [("symlink", "faiss-flat.tiny/ids", "docid")])
    register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data))
    path = pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert os.readlink(path / "ids") == "docid" and (path / "ids").read_bytes() == GOOD_FILES["docid"]


def test_zip_archives_install_and_unsafe_zips_are_refused(served, register, cache):
    data = zip_bytes({f"tiny/{name}": content for name, content in GOOD_FILES.items()})
    register(urls=[publish(served, "tiny.zip", data)], checksum=sha256(data))
    assert (pi.get_prebuilt_index(NAME, cache_dir=cache) / "docid").read_bytes() == GOOD_FILES["docid"]

    before = snapshot(cache)
    evil = zip_bytes({"tiny/index": b"x", "../evil": b"pwned"})
    register(name="evil-zip", urls=[publish(served, "evil.zip", evil)], checksum=sha256(evil))
    with pytest.raises(pi.PrebuiltIndexError, match=r"'evil-zip'.*'\.\./evil'"):
        pi.get_prebuilt_index("evil-zip", cache_dir=cache)
    truncated = data[:-30]
    register(name="cut-zip", urls=[publish(served, "cut.zip", truncated)], checksum=sha256(truncated))
    with pytest.raises(pi.PrebuiltIndexError, match="'cut-zip': archive cut.zip is truncated or corrupt"):
        pi.get_prebuilt_index("cut-zip", cache_dir=cache)
    assert snapshot(cache) == before


def test_archive_that_is_not_the_declared_kind_is_refused(served, register, cache):
    data = tar_gz([("file", "idx/readme.txt", b"hello")])
    register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data))
    with pytest.raises(pi.PrebuiltIndexError, match="not a Pyserini FAISS index"):
        pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert not cache.exists()


def test_force_refetches_and_a_failed_refetch_keeps_the_old_copy(served, register, cache):
    data = tar_gz(good_members())
    register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data))
    path = pi.get_prebuilt_index(NAME, cache_dir=cache)
    first = json.loads((path / pi.MANIFEST).read_text())

    assert pi.get_prebuilt_index(NAME, cache_dir=cache, force=True) == path
    assert sorted(os.listdir(cache / "indexes")) == [path.name]

    served[1].stop()
    before = snapshot(cache)
    with pytest.raises(pi.PrebuiltIndexError, match="unreachable"):
        pi.get_prebuilt_index(NAME, cache_dir=cache, force=True)
    assert snapshot(cache) == before
    assert json.loads((path / pi.MANIFEST).read_text())["name"] == first["name"]


def test_incomplete_directory_and_stale_staging_are_replaced(served, register, cache):
    data = tar_gz(good_members())
    register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data))
    target = cache / "indexes" / f"{NAME}.{hashlib.sha256(data).hexdigest()}"
    target.mkdir(parents=True)
    (target / "index").write_bytes(b"half")  # an interrupted copy: no manifest
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = cache / "indexes" / f"{pi._staging_prefix(NAME)}{dead.pid}-abc"
    (stale / "extracted").mkdir(parents=True)

    assert pi.get_prebuilt_index(NAME, cache_dir=cache) == target
    assert (target / "index").read_bytes() == GOOD_FILES["index"]
    assert sorted(os.listdir(cache / "indexes")) == [target.name]


# --- local builds ----------------------------------------------------------------------------------


class FakeRecipe:
    """Writes a two-document FAISS-shaped directory; counts its calls."""

    key = "fake-recipe/v1"

    def __init__(self, fail_with: Exception | None = None):
        self.calls = []
        self.fail_with = fail_with

    def __call__(self, output_dir: Path, context: pi.BuildContext):
        self.calls.append(context)
        output_dir.mkdir()
        (output_dir / "index").write_bytes(b"vectors")
        if self.fail_with is not None:
            raise self.fail_with
        (output_dir / "docid").write_text("a\nb\n")
        return {"documents": 2, "dimensions": 8}


def test_local_recipe_builds_once_then_reuses(register, cache, tmp_path):
    recipe = FakeRecipe()
    register(recipe=recipe, dimensions=8, documents=2)

    path = pi.get_prebuilt_index(NAME, cache_dir=cache, data_root=tmp_path, threads=2)
    again = pi.get_prebuilt_index(NAME, cache_dir=cache, data_root=tmp_path)

    assert path == again and path.name.startswith(f"{NAME}.build-")
    assert len(recipe.calls) == 1
    assert recipe.calls[0].data_root == tmp_path and recipe.calls[0].threads == 2
    manifest = json.loads((path / pi.MANIFEST).read_text())
    assert manifest["source"] == "build" and manifest["recipe"] == "fake-recipe/v1"
    assert manifest["documents"] == 2 and manifest["data_root"] == str(tmp_path.resolve())
    assert sorted(os.listdir(cache / "indexes")) == [path.name]

    pi.get_prebuilt_index(NAME, cache_dir=cache, force=True)
    assert len(recipe.calls) == 2


def test_an_install_finished_concurrently_is_kept(register, cache):
    class RacingRecipe(FakeRecipe):
        def __call__(self, output_dir, context):
            result = super().__call__(output_dir, context)
            if len(self.calls) == 1:  # "another process" installs the same index while this one builds
                self.winner = pi.get_prebuilt_index(NAME, cache_dir=cache)
                self.winner_inode = (self.winner / pi.MANIFEST).stat().st_ino
            return result

    recipe = RacingRecipe()
    register(recipe=recipe)
    path = pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert path == recipe.winner and len(recipe.calls) == 2
    assert (path / pi.MANIFEST).stat().st_ino == recipe.winner_inode  # not replaced under its users
    assert sorted(os.listdir(cache / "indexes")) == [path.name]


def test_data_root_comes_from_the_environment(register, cache, tmp_path, monkeypatch):
    recipe = FakeRecipe()
    register(recipe=recipe)
    monkeypatch.setenv(registry.DATA_ROOT_ENV, str(tmp_path))
    pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert recipe.calls[0].data_root == tmp_path


def test_failing_recipe_leaves_the_cache_untouched(served, register, cache):
    install_good(served, register, cache)
    before = snapshot(cache)
    register(recipe=FakeRecipe(fail_with=PyseriniLlamaError("the corpus is missing")))
    with pytest.raises(pi.PrebuiltIndexError, match=f"'{NAME}' cannot be built: the corpus is missing"):
        pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert snapshot(cache) == before

    register(recipe=FakeRecipe(fail_with=KeyboardInterrupt()))  # interrupted mid-build
    with pytest.raises(KeyboardInterrupt):
        pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert snapshot(cache) == before


def test_build_result_must_match_the_registry(register, cache):
    register(recipe=FakeRecipe(), dimensions=16)
    with pytest.raises(pi.PrebuiltIndexError, match="8-dim vectors, the registry says 16"):
        pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert not cache.exists()


def test_download_failure_falls_back_to_the_recipe(served, register, cache):
    recipe = FakeRecipe()
    register(urls=[f"{served[1].url}/missing.tar.gz"], checksum=sha256(b"x"), recipe=recipe)
    path = pi.get_prebuilt_index(NAME, cache_dir=cache)
    assert path.name.startswith(f"{NAME}.build-") and len(recipe.calls) == 1


def test_repllama_faiss_recipe_builds_a_searchable_index(register, cache, tiny_llama, tiny_beir):
    import faiss
    import numpy as np

    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    recipe = pi.RepLLaMAFaissRecipe(tiny_beir.name, encoder=str(tiny_llama), max_length=64)
    register(recipe=recipe, model=str(tiny_llama), collection=tiny_beir.name, dimensions=64, documents=6)

    path = pi.get_prebuilt_index(NAME, cache_dir=cache, data_root=tiny_beir.parent)

    assert (path / "docid").read_text().split() == ["d1", "d2", "d3", "d4", "d5", "d6"]
    index = faiss.read_index(str(path / "index"))
    assert (index.d, index.ntotal) == (64, 6)
    query = RepLLaMAEncoder(str(tiny_llama)).encode_queries(["what is a lobster roll"])
    expected = RepLLaMAEncoder(str(tiny_llama)).encode_passages(
        [{"title": "Lobster roll", "text": "A lobster roll is a sandwich from New England."}], max_length=64
    )
    scores, ids = index.search(query, 6)
    assert np.isclose(scores[0][list(ids[0]).index(0)], float(query[0] @ expected[0]), atol=1e-5)
    assert json.loads((path / pi.MANIFEST).read_text())["recipe"] == recipe.key


def test_recipe_without_data_root_says_what_to_pass(cache, monkeypatch):
    monkeypatch.delenv(registry.DATA_ROOT_ENV, raising=False)
    with pytest.raises(pi.PrebuiltIndexError, match="'beir-v1.0.0-scifact.bm25-flat'.*pass --data-root"):
        pi.get_prebuilt_index("beir-v1.0.0-scifact.bm25-flat", cache_dir=cache)
    with pytest.raises(pi.PrebuiltIndexError, match=r"nowhere/beir/nfcorpus/corpus\.jsonl not found"):
        pi.get_prebuilt_index("beir-v1.0.0-nfcorpus.bm25-flat", cache_dir=cache, data_root=cache / "nowhere")
    assert not cache.exists()


# --- registry, resolution and CLI ------------------------------------------------------------------


def test_registry_lists_bm25_and_shipped_repllama_entries():
    entries = {e.name: e for e in pi.list_prebuilt_indexes()}
    for collection in ("scifact", "nfcorpus"):
        bm25 = entries[f"beir-v1.0.0-{collection}.bm25-flat"]
        assert (bm25.kind, bm25.model, bm25.collection, bm25.source) == (
            "lucene",
            "bm25",
            f"beir/{collection}",
            "build",
        )
        dense = entries[f"beir-v1.0.0-{collection}.repllama-smollm2-135m"]
        assert (dense.kind, dense.dimensions, dense.model) == ("faiss", 576, "repllama-smollm2-135m")
    assert entries["beir-v1.0.0-scifact.bm25-flat"].documents == 5183


def test_entries_are_validated():
    with pytest.raises(ValueError, match="need a checksum"):
        pi.PrebuiltIndex("x", "d", "faiss", "m", "c", urls=["http://h/x.tar.gz"])
    with pytest.raises(ValueError, match="sha256:<64 hex digits>"):
        pi.PrebuiltIndex("x", "d", "faiss", "m", "c", urls=["http://h/x.tar.gz"], checksum="abc")
    with pytest.raises(ValueError, match="urls, a build recipe, or both"):
        pi.PrebuiltIndex("x", "d", "faiss", "m", "c")
    with pytest.raises(ValueError, match="already registered"):
        pi.register_prebuilt_index(registry.REGISTRY["beir-v1.0.0-scifact.bm25-flat"])


def test_unknown_name_suggests_close_ones(cache):
    with pytest.raises(PyseriniLlamaError, match="did you mean beir-v1.0.0-scifact.bm25-flat"):
        pi.get_prebuilt_index("beir-v1.0.0-scifact.bm25", cache_dir=cache)


def test_resolve_index(register, cache, tmp_path):
    register(recipe=FakeRecipe())
    assert pi.resolve_index(str(tmp_path)) == str(tmp_path)
    assert pi.resolve_index("beir-v1.0.0-scifact.contriever") == "beir-v1.0.0-scifact.contriever"  # Pyserini's
    assert pi.resolve_index(NAME, cache_dir=cache) == str(pi.cached_index_path(NAME, cache))


def test_cli_lists_and_fetches(served, register, cache, capsys):
    data = tar_gz(good_members())
    register(urls=[publish(served, "tiny.tar.gz", data)], checksum=sha256(data))

    assert cli_main(["--list", "--cache-dir", str(cache)]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"beir-v1\.0\.0-scifact\.repllama-smollm2-135m +faiss +repllama-smollm2-135m", listing)
    assert f"{NAME}" in listing and "no" in listing.splitlines()[-3]

    assert cli_main(["--fetch", NAME, "--cache-dir", str(cache)]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(pi.cached_index_path(NAME, cache))  # only the path goes to stdout

    assert cli_main(["--cache-dir", str(cache)]) == 0
    assert f"{NAME}.{hashlib.sha256(data).hexdigest()}" in capsys.readouterr().out


@pytest.mark.slow
def test_shipped_repllama_entry_builds_with_the_shipped_model(tmp_path, shared_data):
    """The registry's RepLLaMA entries build with the shipped model: vectors equal direct encoding."""
    import faiss
    import numpy as np

    from pyserini_llama import RepLLaMAEncoder
    from pyserini_llama.data.corpus import iter_corpus

    entry = registry.REGISTRY["beir-v1.0.0-scifact.repllama-smollm2-135m"]
    recipe = entry.recipe
    assert (recipe.collection, recipe.encoder, recipe.max_length) == ("beir/scifact", "repllama-smollm2-135m", 64)

    docs = [doc for doc, _ in zip(iter_corpus(shared_data / "beir" / "scifact"), range(12), strict=False)]
    slice_dir = tmp_path / "data" / "beir" / "scifact"
    slice_dir.mkdir(parents=True)
    (slice_dir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d.docid, "title": d.title, "text": d.text}) + "\n" for d in docs)
    )
    info = recipe(tmp_path / "index", registry.BuildContext(data_root=tmp_path / "data"))
    assert info["documents"] == 12 and info["dimensions"] == 576
    assert (tmp_path / "index" / "docid").read_text().split() == [d.docid for d in docs]

    index = faiss.read_index(str(tmp_path / "index" / "index"))
    stored = index.reconstruct_n(0, index.ntotal)
    expected = RepLLaMAEncoder("repllama-smollm2-135m", passage_max_length=64).encode_passages(docs)
    np.testing.assert_allclose(stored, expected, atol=1e-5)


@pytest.mark.slow
def test_scifact_bm25_is_built_from_shared_data_and_reused(shared_data, tmp_path):
    name = "beir-v1.0.0-scifact.bm25-flat"
    path = pi.get_prebuilt_index(name, cache_dir=tmp_path, data_root=shared_data)
    manifest = json.loads((path / pi.MANIFEST).read_text())
    assert manifest["documents"] == 5183 and manifest["corpus"] == str((shared_data / "beir" / "scifact").resolve())
    assert sorted(os.listdir(tmp_path / "indexes")) == [path.name]

    before = snapshot(tmp_path)
    assert pi.get_prebuilt_index(name, cache_dir=tmp_path, data_root=shared_data) == path
    assert snapshot(tmp_path) == before

    from pyserini_llama.bootstrap import import_pyserini

    # the renamed directory opens as a Lucene index (pyserini.index.lucene is loaded by the build already)
    reader = import_pyserini("pyserini.index.lucene").LuceneIndexReader(str(path))
    assert reader.stats()["documents"] == 5183
