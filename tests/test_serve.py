"""`python -m cwgan.serve`: the JSON API over real HTTP on 127.0.0.1, errors, batching,
reloading a newer generator, the CLI."""

import asyncio
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
import tensorflow as tf

import cwgan
from conftest import PYTHON, serving, subprocess_env
from cwgan.sampling.sample import generate_unit, read_generator
from cwgan.serving.app import Batcher, json_body, make_app
from cwgan.serving.requests import MAX_BODY_BYTES, MAX_IMAGES, RequestError
from cwgan.training.checkpoints import GENERATOR_FILE, atomic_write, read_json, write_json

PRETRAINED = cwgan.PRETRAINED_DIR
# The server's compiled generator against cwgan.sample's eager one, at other batch sizes:
# the same images up to float rounding, which graph fusions (oneDNN) and a GPU's kernel
# choices make larger than on this CPU. Another seed or class differs by 0.1 and more.
ATOL = 1e-3


def call(base, method, path, body=None, raw=None, headers=None):
    """`(status, JSON or bytes)` of one request; `body` is sent as JSON, `raw` as is."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, content, kind = response.status, response.read(), response.headers
    except urllib.error.HTTPError as e:
        status, content, kind = e.code, e.read(), e.headers
    if kind.get("content-type", "").startswith("application/json"):
        return status, json.loads(content)
    return status, content


def decode_png(url):
    data = base64.b64decode(url.split(",", 1)[1])
    image = tf.io.decode_png(data).numpy()
    return image[..., 0] if image.shape[-1] == 1 else image


@pytest.fixture(scope="module")
def server():
    """The shipped MNIST generator served with batching on."""
    with serving(make_app(PRETRAINED, model_name="cwgan", reload_seconds=0)) as base:
        yield base


def test_health_status_and_metadata(server):
    status, health = call(server, "GET", "/healthz")
    assert status == 200 and health["status"] == "ok"
    info = read_json(os.path.join(PRETRAINED, "generator.json"))
    status, body = call(server, "GET", "/v1/models/cwgan")
    assert status == 200
    version, = body["model_version_status"]
    assert version["state"] == "AVAILABLE"
    assert version["version"] == str(info["generator_iterations"])
    meta = body["metadata"]
    assert meta["classes"] == list(range(10)) and meta["class_names"] == list("0123456789")
    assert meta["latent_dim"] == info["latent_dim"]
    assert meta["image_shape"] == [28, 28, 1] and meta["output_shape"] == [28, 28]
    status, body = call(server, "GET", "/v1/models/cwgan/metadata")
    signature = body["metadata"]["signature_def"]["serving_default"]
    assert signature["inputs"]["noise"]["shape"] == [-1, info["latent_dim"]]
    assert signature["outputs"]["images"]["shape"] == [-1, 28, 28]


def test_sample_is_what_cwgan_sample_draws_for_the_seed(server):
    expected = cwgan.sample(label=7, n=3, seed=5, checkpoint_dir=PRETRAINED)
    status, body = call(server, "POST", "/api/sample",
                        {"label": 7, "n": 3, "seed": 5, "format": "array"})
    assert status == 200 and body["seed"] == 5 and body["labels"] == [7, 7, 7]
    np.testing.assert_allclose(np.asarray(body["images"]), expected, atol=ATOL)
    status, body = call(server, "POST", "/api/sample", {"label": "7", "n": 3, "seed": 5})
    pixels = np.stack([decode_png(url) for url in body["images"]]).astype(int)
    assert pixels.shape == (3, 28, 28)
    assert np.abs(pixels - np.round(expected * 255)).max() <= 1  # PNG's 8 bits


def test_sample_of_a_list_of_labels_and_of_a_fresh_seed(server):
    status, body = call(server, "POST", "/api/sample",
                        {"label": [3, 7, 3], "seed": 2, "format": "array"})
    assert status == 200 and body["class_names"] == ["3", "7", "3"]
    np.testing.assert_allclose(np.asarray(body["images"]),
                               cwgan.sample(label=[3, 7, 3], seed=2, checkpoint_dir=PRETRAINED),
                               atol=ATOL)
    status, body = call(server, "POST", "/api/sample", {"label": 1, "format": "array"})
    seed = body["seed"]  # drawn by the server: the same seed gives the same image again
    again = call(server, "POST", "/api/sample", {"label": 1, "seed": seed, "format": "array"})
    np.testing.assert_allclose(again[1]["images"], body["images"], atol=ATOL)


def test_sample_png_link_and_morph(server):
    status, png = call(server, "GET", "/api/sample.png?label=4&n=5&seed=1")
    assert status == 200
    image = tf.io.decode_png(png).numpy()
    assert image.shape == (28, 5 * 28 + 4 * 2, 1)
    status, body = call(server, "POST", "/api/morph", {"from_label": 3, "to_label": "8",
                                                        "steps": 5, "n": 2, "seed": 0,
                                                        "format": "array"})
    grid = np.asarray(body["images"])
    assert status == 200 and grid.shape == (2, 5, 28, 28)
    np.testing.assert_allclose(grid, cwgan.class_morph(3, 8, steps=5, n=2, seed=0,
                                                       checkpoint_dir=PRETRAINED), atol=ATOL)


def test_predict_in_tensorflow_servings_row_and_columnar_formats(server):
    generator, info = read_generator(PRETRAINED)
    noise = np.random.default_rng(0).standard_normal((3, info["latent_dim"])).astype(np.float32)
    labels = np.array([0, 9, 4], np.int32)
    expected = generate_unit(generator, noise, labels)
    status, body = call(server, "POST", "/v1/models/cwgan:predict", {
        "instances": [{"label": int(l), "noise": n.tolist()} for l, n in zip(labels, noise)]})
    assert status == 200
    np.testing.assert_allclose(np.asarray(body["predictions"]), expected, atol=ATOL)
    status, body = call(server, "POST", "/v1/models/cwgan:predict", {
        "signature_name": "serving_default",
        "inputs": {"label": labels.tolist(), "noise": noise.tolist()}})
    assert status == 200
    np.testing.assert_allclose(np.asarray(body["outputs"]), expected, atol=ATOL)


NOISE = [0.0] * 100
BAD_REQUESTS = [
    ("POST", "/api/sample", {"label": 7, "n": 10**9}, 400, "n", "1..256"),
    ("POST", "/api/sample", {"label": 7, "n": 0}, 400, "n", "1..256"),
    ("POST", "/api/sample", {"label": 12}, 400, "label", "[0, 1, 2"),
    ("POST", "/api/sample", {"label": "cat"}, 400, "label", "'cat'"),
    ("POST", "/api/sample", {"label": True}, 400, "label", "True"),
    ("POST", "/api/sample", {"n": 3}, 400, "label", "Missing `label`"),
    ("POST", "/api/sample", {"label": 7, "sed": 3}, 400, "sed", "allowed keys"),
    ("POST", "/api/sample", {"label": 7, "seed": -1}, 400, "seed", "0..9223372036854775807"),
    ("POST", "/api/sample", {"label": 7, "format": "gif"}, 400, "format", "['png', 'array']"),
    ("POST", "/api/sample", {"label": [3, 7], "n": 2}, 400, "n", "one image per entry"),
    ("POST", "/api/sample", {"label": [3] * 300}, 400, "label", "1..256"),
    ("POST", "/api/sample", [7], 400, "body", "JSON object"),
    ("GET", "/api/sample.png?label=7&n=1000000000", None, 400, "n", "1..256"),
    ("GET", "/api/sample.png?n=3", None, 400, "label", "Missing"),
    ("POST", "/api/morph", {"from_label": 3, "to_label": 3}, 400, "to_label", "other than"),
    ("POST", "/api/morph", {"from_label": 3, "to_label": 7, "steps": 1}, 400, "steps", "2..32"),
    ("POST", "/v1/models/cwgan:predict", {"instances": [{"label": 7, "noise": [0.1]}]}, 400,
     "instances[0].noise", "of length 1. Expected a list of 100 numbers"),
    ("POST", "/v1/models/cwgan:predict", {"instances": [{"label": 7, "noise": NOISE},
                                                        {"label": 10, "noise": NOISE}]},
     400, "instances[1].label", "Expected one of the classes"),
    ("POST", "/v1/models/cwgan:predict", {"instances": [{"label": 7}]}, 400,
     "instances[0].noise", "Missing"),
    ("POST", "/v1/models/cwgan:predict", {"instances": [{"label": 7, "noise": NOISE}] * 257},
     400, "instances", "1..256"),
    ("POST", "/v1/models/cwgan:predict", {"inputs": {"label": [1, 2], "noise": [NOISE]}}, 400,
     "inputs.noise", "one row per label"),
    ("POST", "/v1/models/cwgan:predict", {"instances": [], "inputs": {}}, 400, "instances",
     "exactly one of"),
    ("POST", "/v1/models/cwgan:predict", {"signature_name": "x", "instances": []}, 400,
     "signature_name", "serving_default"),
    ("POST", "/v1/models/other:predict", {"instances": []}, 404, "name", "serves 'cwgan'"),
    ("GET", "/v1/models/other", None, 404, "name", "serves 'cwgan'"),
    ("GET", "/nowhere", None, 404, "path", "Not Found"),
    ("GET", "/api/sample", None, 405, "path", "Method Not Allowed"),
]


@pytest.mark.parametrize("method,path,body,status,field,text", BAD_REQUESTS,
                         ids=[f"{r[0]} {r[1]} {r[4]}" for r in BAD_REQUESTS])
def test_bad_requests_get_a_json_error_naming_the_field(server, method, path, body, status,
                                                        field, text):
    got, error = call(server, method, path, body)
    assert (got, error["field"]) == (status, field)
    assert text in error["error"]


def test_bodies_that_are_not_json_or_too_big_are_refused_and_the_server_goes_on(server):
    status, error = call(server, "POST", "/api/sample", raw=b"label=7",
                         headers={"Content-Type": "application/json"})
    assert (status, error["field"]) == (400, "body") and "not JSON" in error["error"]
    status, error = call(server, "POST", "/api/sample", raw=b"\xff\xfe")
    assert (status, error["field"]) == (400, "body")
    try:  # refused on arrival: the client may still be sending when the server closes
        status, error = call(server, "POST", "/api/sample", raw=b" " * (MAX_BODY_BYTES + 1))
        assert (status, error["field"]) == (413, "body")
    except urllib.error.URLError as e:
        assert isinstance(e.reason, (BrokenPipeError, ConnectionResetError)), e
    # Refused on its Content-Length, before the body is read: the 10^9 bytes announced
    # are never sent, and the answer still comes.
    host, port = urllib.parse.urlsplit(server).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/api/sample")
    connection.putheader("Content-Length", str(10**9))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "at most" in json.loads(response.read())["error"]
    connection.close()
    assert call(server, "GET", "/healthz")[0] == 200


def test_a_body_without_length_is_refused_once_it_passes_the_limit():
    class Streamed:  # a chunked body: no Content-Length to refuse it on
        headers = {}
        chunks = 0

        async def stream(self):
            for _ in range(100):
                self.chunks += 1
                yield b" " * (MAX_BODY_BYTES // 4)

    request = Streamed()
    with pytest.raises(RequestError) as refused:
        asyncio.run(json_body(request))
    assert refused.value.status == 413 and request.chunks == 5  # not one chunk more


def test_concurrent_clients_each_get_their_own_images(server):
    def one(i):
        label, seed = i % 10, 100 + i
        status, body = call(server, "POST", "/api/sample",
                            {"label": label, "n": 2, "seed": seed, "format": "array"})
        return status, body["labels"], np.asarray(body["images"]), label, seed

    before = call(server, "GET", "/healthz")[1]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(48)))
    for status, labels, images, label, seed in results:
        assert status == 200 and labels == [label, label]
        np.testing.assert_allclose(
            images, cwgan.sample(label=label, n=2, seed=seed, checkpoint_dir=PRETRAINED),
            atol=ATOL)
    after = call(server, "GET", "/healthz")[1]
    assert after["batched_images"] - before["batched_images"] == 96
    assert after["requests"] - before["requests"] == 48


class _RecordingModel:
    """Stands in for a loaded generator: records the batch sizes it is called with."""

    def __init__(self):
        self.calls = []

    def generate(self, noise, labels):
        self.calls.append(len(labels))
        return noise * 10 + labels[:, None]


class _State:
    batches = batched_images = 0


def test_batcher_runs_everything_queued_as_one_generator_call():
    model = _RecordingModel()

    async def scenario():
        batcher = Batcher(_State())
        requests = [(np.full((k, 2), k, np.float32), np.full((k,), k, np.int32))
                    for k in (1, 2, 3, 4)]
        waiting = [asyncio.ensure_future(batcher.generate(model, *r)) for r in requests]
        await asyncio.sleep(0)  # all four are queued before the worker starts
        worker = asyncio.ensure_future(batcher.run())
        results = await asyncio.gather(*waiting)
        worker.cancel()
        return requests, results

    requests, results = asyncio.run(scenario())
    assert model.calls == [10]  # one call for the four requests
    for (noise, labels), images in zip(requests, results):
        np.testing.assert_array_equal(images, noise * 10 + labels[:, None])


def _save_changed_generator(directory, scale, iterations):
    """Rewrites `directory`'s generator with its weights scaled (as a training run's newer
    checkpoint would), then its generator.json with a new iteration count."""
    generator, info = read_generator(directory)
    generator.set_weights([w * scale for w in generator.get_weights()])
    atomic_write(os.path.join(directory, GENERATOR_FILE), generator.save)
    write_json(os.path.join(directory, "generator.json"),
               dict(info, generator_iterations=iterations, image_shape=list(info["image_shape"])))
    return generator


def test_a_newer_generator_is_served_without_dropping_requests(checkpoint_37, tmp_path):
    directory = str(tmp_path / "live")
    shutil.copytree(checkpoint_37, directory)
    app = make_app(directory, model_name="cwgan", reload_seconds=0.05)
    failures, done, stop = [], [0], threading.Event()

    def client(base):
        while not stop.is_set():
            status, body = call(base, "POST", "/api/sample", {"label": 3, "n": 4, "seed": 1})
            if status != 200:
                failures.append(body)
            done[0] += 1

    with serving(app) as base:
        clients = [threading.Thread(target=client, args=(base,)) for _ in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(0.5)
        new = _save_changed_generator(directory, 0.5, iterations=999)
        deadline = time.monotonic() + 60
        while call(base, "GET", "/v1/models/cwgan")[1]["model_version_status"][0][
                "version"] != "999":
            assert time.monotonic() < deadline, "the newer generator was not picked up"
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for thread in clients:
            thread.join()
        noise = np.random.default_rng(7).standard_normal((2, 16)).astype(np.float32)
        status, body = call(base, "POST", "/api/sample", {"label": 7, "n": 2, "seed": 7,
                                                          "format": "array"})
        np.testing.assert_allclose(body["images"], generate_unit(new, noise, np.full(2, 7)),
                                   atol=ATOL)
        # A broken file is not swapped in: the generator already loaded goes on serving.
        reloads = call(base, "GET", "/healthz")[1]["reloads"]
        with open(os.path.join(directory, GENERATOR_FILE), "wb") as f:
            f.write(b"not a model")
        time.sleep(0.5)
        health = call(base, "GET", "/healthz")[1]
        assert health["reloads"] == reloads and health["generator_iterations"] == 999
        assert call(base, "POST", "/api/sample", {"label": 7, "seed": 7})[0] == 200
    assert failures == [] and done[0] > 4


def test_cli_serves_on_a_free_port_and_stops_on_ctrl_c(checkpoint_37):
    process = subprocess.Popen(
        [PYTHON, "-m", "cwgan.serve", f"--checkpoint_dir={checkpoint_37}", "--port=0",
         "--model_name=digits"], env=subprocess_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        base = line.split("running on ")[1].split()[0]
        status, body = call(base, "GET", "/v1/models/digits")
        assert status == 200 and body["metadata"]["classes"] == [3, 7]
        assert call(base, "POST", "/api/sample", {"label": 7, "n": 2})[0] == 200
        assert call(base, "POST", "/api/sample", {"label": 5})[1]["field"] == "label"
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(lines) + out
    assert "Serving" in "".join(lines)


@pytest.mark.parametrize("args,message", [
    (["--checkpoint_dir=/nonexistent/run"], "No trained generator in checkpoint_dir"),
    (["--model_name=a/b"], "--model_name='a/b'"),
    (["--port=70000"], "--port"),
])
def test_cli_refuses_bad_flags_with_exit_status_2(args, message):
    result = subprocess.run([PYTHON, "-m", "cwgan.serve", *args], env=subprocess_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_keras_is_not_reloaded_per_request(server, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a request loaded a model")

    monkeypatch.setattr(keras.saving, "load_model", refuse)
    for label in range(3):
        assert call(server, "POST", "/api/sample", {"label": label, "n": MAX_IMAGES})[0] == 200


def test_load_bench_checks_every_response_in_both_modes(checkpoint_37, tmp_path):
    out = tmp_path / "load.json"
    result = subprocess.run(
        [PYTHON, "-m", "cwgan.bench_serve", f"--checkpoint_dir={checkpoint_37}",
         "--requests=40", "--clients=4", "--n=3", f"--json_out={out}"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["mode"] for r in results] == ["batching", "nobatching"]
    for r in results:
        assert (r["answered"], r["errors"], r["wrong"], r["not_sent"]) == (40, 0, 0, 0)
        assert r["p50_ms"] <= r["p99_ms"] and r["requests_per_second"] > 0
    assert results[0]["mean_batch_images"] >= 3  # whole requests go into each call
    assert "p99 ms" in result.stdout


def test_load_bench_counts_wrong_images_and_errors(server):
    from cwgan.serving.load_test import expected_pixels, run_load
    port = int(urllib.parse.urlsplit(server).port)
    labels, pixels = expected_pixels(PRETRAINED, 12, 2)
    latencies, counts, _ = run_load(port, labels, pixels, clients=3, max_seconds=120)
    assert len(latencies) == 12 and counts == {"errors": 0, "wrong": 0, "not_sent": 0}
    pixels[::3, 0, 14, 14] += 40  # one pixel off in every third request
    _, counts, _ = run_load(port, labels, pixels, clients=3, max_seconds=120)
    assert counts["wrong"] == 4
    _, counts, _ = run_load(port, [12] * 5, pixels[:5], clients=2, max_seconds=120)
    assert counts["errors"] == 5  # class 12 does not exist: 400 each


def test_page_is_self_contained(server):
    status, page = call(server, "GET", "/")
    page = page.decode()
    assert status == 200 and 'id="classes"' in page and "/api/sample" in page
    for external in ("http://", "https://", "<link", "@import", "src="):
        assert external not in page, external  # works offline: nothing fetched elsewhere


@pytest.mark.parametrize("batching", [True, False])
def test_a_failing_generator_call_is_a_json_500_and_the_server_goes_on(checkpoint_37,
                                                                       batching):
    app = make_app(str(checkpoint_37), batching=batching, reload_seconds=0)
    model = app.state.cwgan.model
    working = model.generate
    with serving(app) as base:
        model.generate = lambda noise, labels: (_ for _ in ()).throw(RuntimeError("boom"))
        status, error = call(base, "POST", "/api/sample", {"label": 3})
        assert (status, error["field"]) == (500, "server") and "RuntimeError" in error["error"]
        model.generate = working
        assert call(base, "POST", "/api/sample", {"label": 3})[0] == 200


def test_a_colour_generator_serves_rgb_images_and_its_shape(colour_checkpoint):
    with serving(make_app(str(colour_checkpoint), reload_seconds=0)) as base:
        meta = call(base, "GET", "/v1/models/checkpoints")[1]["metadata"]
        assert meta["image_shape"] == [32, 32, 3] and meta["output_shape"] == [32, 32, 3]
        status, body = call(base, "POST", "/api/sample", {"label": "4", "n": 2, "seed": 1,
                                                          "format": "array"})
        expected = cwgan.sample(label="4", n=2, seed=1, checkpoint_dir=colour_checkpoint)
        assert status == 200 and np.asarray(body["images"]).shape == (2, 32, 32, 3)
        np.testing.assert_allclose(body["images"], expected, atol=ATOL)
        status, body = call(base, "POST", "/api/sample", {"label": 4, "n": 2, "seed": 1})
        pixels = np.stack([decode_png(url) for url in body["images"]]).astype(int)
        assert pixels.shape == (2, 32, 32, 3)
        assert np.abs(pixels - np.round(expected * 255)).max() <= 1


def test_the_server_names_the_run_never_a_path_on_its_disk(checkpoint_37):
    """By default the model is named after its run (the checkpoint directory's own name);
    neither the page nor the model's status and metadata print where it lies."""
    directory = os.path.abspath(checkpoint_37)
    with serving(make_app(directory, reload_seconds=0)) as base:
        with urllib.request.urlopen(base + "/") as response:
            page = response.read().decode()
        answers = [page] + [json.dumps(call(base, "GET", path)[1]) for path in
                            ("/v1/models/checkpoints", "/v1/models/checkpoints/metadata",
                             "/healthz")]
    for answer in answers:
        assert directory not in answer and os.path.dirname(directory) not in answer
    assert "<title>checkpoints: a conditional WGAN of mnist (2 classes: 3, 7)</title>" in page
    assert json.loads(answers[1])["metadata"]["model_name"] == "checkpoints"
