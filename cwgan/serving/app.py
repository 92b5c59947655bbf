"""The app behind `python -m cwgan.serve`: one loaded generator, a page and a JSON API.

Built on Starlette (routing, requests and responses for ASGI) and served by uvicorn:
both are small, well kept and the usual pair under FastAPI, and ASGI lets one event loop
hold many slow clients while the generator runs in worker threads. Routes (`<name>` is
the model name: by default the run's, the checkpoint directory's own name; nothing the
server answers names a path on its disk):

  GET  /                          the page (self-contained: works offline)
  GET  /healthz                   200 {"status": "ok", ...} once a generator is loaded
  POST /api/sample                {"label": 7 | "cat" | [3, 7], "n": 8, "seed": 0,
                                   "format": "png" | "array"}
  GET  /api/sample.png?label=7&n=16&seed=0    one PNG of the samples in a row (a link)
  POST /api/morph                 {"from_label": 3, "to_label": 7, "steps": 8, "n": 1,
                                   "seed": 0, "format": ...}: `cwgan.class_morph`'s grid
  GET  /v1/models/<name>          TensorFlow Serving's model status, plus "metadata"
                                  (classes, names, latent size, image shape, iteration)
  GET  /v1/models/<name>/metadata the same metadata
  POST /v1/models/<name>:predict  TensorFlow Serving's REST predict: {"instances":
                                  [{"label": 7, "noise": [...]}]} or {"inputs": {...}}

Images are what `cwgan.sample` returns for the same seed (noise drawn as it draws it),
in [0, 1]: "array" gives them as nested lists, "png" as `data:image/png;base64,...` URLs.

Concurrency: with batching on (the default), sample and predict requests queue for one
worker that runs everything queued so far as one generator call, so concurrent clients
share calls instead of contending for the 2 cores; with it off each request calls the
generator in its own thread. The generator is loaded once, and reloaded (in a background
thread) when a newer `generator.keras` appears in the checkpoint directory: requests
already holding the old one finish with it, later ones get the new one.
"""

import asyncio
import base64
import contextlib
import html
import json
import logging
import os
import threading
import time

import anyio
import numpy as np
import tensorflow as tf
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cwgan.sampling.interpolation import morph_images
from cwgan.sampling.sample import read_generator, seeded_noise, unit_images
from cwgan.serving.requests import (MAX_BODY_BYTES, RequestError, morph_args, predict_args,
                                    sample_args)
from cwgan.training.checkpoints import GENERATOR_CONFIG_FILE, GENERATOR_FILE

PAGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")
MAX_BATCH_IMAGES = 512  # images per batched generator call (a request may overshoot it)
log = logging.getLogger("cwgan.serve")


class LoadedGenerator:
    """One generator read from disk, with what requests need of it: `info` (generator.json),
    a compiled `generate(noise, labels)` -> images in [0, 1], and the file's identity."""

    def __init__(self, directory):
        self.directory = directory
        self.stamp = _stamp(directory)
        self.generator, self.info = read_generator(directory)
        self.loaded_at = time.time()
        latent_dim = self.info["latent_dim"]
        generator = self.generator
        # One trace for every batch size: a retrace per new size would stall requests.
        self._call = tf.function(
            lambda noise, labels: generator([noise, labels], training=False),
            input_signature=[tf.TensorSpec((None, latent_dim), tf.float32),
                             tf.TensorSpec((None,), tf.int32)])
        self.generate(np.zeros((1, latent_dim), np.float32),
                      np.asarray(self.info["classes"][:1], np.int32))  # trace now, not later

    def generate(self, noise, labels):
        """Images in [0, 1] as `cwgan.sample` returns them: `(n, h, w)` or `(n, h, w, 3)`."""
        return unit_images(self._call(noise, labels))

    def metadata(self, model_name):
        info = self.info
        shape = list(info["image_shape"])
        return {
            "model_name": model_name,
            "classes": list(info["classes"]),
            "class_names": list(info["class_names"]),
            "latent_dim": info["latent_dim"],
            "image_shape": shape,
            "output_shape": shape[:2] if shape[-1] == 1 else shape,
            "generator_iterations": info.get("generator_iterations"),
            "dataset": info.get("dataset"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


def _stamp(directory):
    """What identifies the files on disk: (mtime_ns, size) of both; None if one is gone."""
    try:
        return tuple((s.st_mtime_ns, s.st_size) for s in (
            os.stat(os.path.join(directory, name))
            for name in (GENERATOR_FILE, GENERATOR_CONFIG_FILE)))
    except FileNotFoundError:
        return None


class Reloader:
    """Polls the checkpoint directory every `seconds` in a daemon thread and swaps in a
    newer generator once it reads cleanly (a checkpoint is written then renamed, so a
    complete file appears at once). A file that fails to load is logged and retried only
    when it changes again; the old generator keeps serving meanwhile."""

    def __init__(self, server_state, seconds):
        self.state, self.seconds = server_state, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cwgan-reload", daemon=True)
        self._failed = None

    def start(self):
        if self.seconds > 0:
            self._thread.start()

    def stop(self):
        self._stop.set()

    def _run(self):
        while not self._stop.wait(self.seconds):
            self.check()

    def check(self):
        """Loads the generator if its files changed; returns True if it swapped one in."""
        current = self.state.model
        stamp = _stamp(current.directory)
        if stamp is None or stamp == current.stamp or stamp == self._failed:
            return False
        try:
            model = LoadedGenerator(current.directory)
        except Exception as e:  # keep serving the old one; say why
            self._failed = stamp
            log.warning("Not reloading %s: %s", current.directory, e)
            return False
        self.state.model = model
        self.state.reloads += 1
        log.info("Reloaded %s (generator iteration %s).", current.directory,
                 model.info.get("generator_iterations"))
        return True


class Batcher:
    """Runs queued `(model, noise, labels)` requests together: one generator call per
    model for everything that queued while the previous call ran (up to
    `MAX_BATCH_IMAGES`), in a worker thread."""

    def __init__(self, state):
        self.state = state
        self.queue = asyncio.Queue()

    async def generate(self, model, noise, labels):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((model, noise, labels, future))
        return await future

    async def run(self):
        while True:
            batch = [await self.queue.get()]
            count = len(batch[0][2])
            while count < MAX_BATCH_IMAGES and not self.queue.empty():
                batch.append(self.queue.get_nowait())
                count += len(batch[-1][2])
            for model in {id(item[0]): item[0] for item in batch}.values():
                group = [item for item in batch if item[0] is model]
                await self._run_group(model, group)

    async def _run_group(self, model, group):
        noise = np.concatenate([item[1] for item in group])
        labels = np.concatenate([item[2] for item in group])
        try:
            images = await anyio.to_thread.run_sync(model.generate, noise, labels)
        except Exception as e:  # every waiting request gets the error, the loop goes on
            for item in group:
                if not item[3].done():
                    item[3].set_exception(e)
            return
        self.state.batches += 1
        self.state.batched_images += len(labels)
        start = 0
        for item in group:
            stop = start + len(item[2])
            if not item[3].done():  # a client that went away cancelled its future
                item[3].set_result(images[start:stop])
            start = stop


class ServerState:
    """What the routes share: the current generator, the batcher, counters."""

    def __init__(self, model, model_name, batching):
        self.model, self.model_name, self.batching = model, model_name, batching
        with open(PAGE_FILE, encoding="utf-8") as f:  # once, not per request
            self.page = f.read().replace("{{MODEL_NAME}}", html.escape(model_name)).replace(
                "{{TITLE}}", html.escape(page_title(model_name, model.info)))
        self.batcher = Batcher(self) if batching else None
        self.reloads = self.batches = self.batched_images = self.requests = 0

    async def generate(self, model, noise, labels):
        self.requests += 1
        if self.batcher is not None:
            return await self.batcher.generate(model, noise, labels)
        return await anyio.to_thread.run_sync(model.generate, noise, labels)


def png_bytes(image):
    """A `(h, w)` or `(h, w, 3)` image in [0, 1] as PNG bytes (8 bits per channel)."""
    pixels = np.round(np.asarray(image) * 255.0).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return tf.io.encode_png(pixels).numpy()


def png_data_url(image):
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def _row(images, pad=2):
    """`(n, h, w[, 3])` images side by side on a white background, `pad` pixels apart."""
    n, h, w = images.shape[:3]
    out = np.ones((h, n * (w + pad) - pad) + images.shape[3:], np.float32)
    for i in range(n):
        out[:, i * (w + pad):i * (w + pad) + w] = images[i]
    return out


def _noise(seed, n, latent_dim):
    """`cwgan.sample`'s noise for `seed`; a fresh seed (returned) when `seed` is None."""
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31))
    return seed, seeded_noise(seed, n, latent_dim)


def _images_json(images, fmt):
    if fmt == "array":
        return images.tolist()
    return [png_data_url(image) for image in images]


def _error(status, field, message):
    return JSONResponse({"error": message, "field": field}, status_code=status)


async def json_body(request):
    """The body as JSON, refused early when over `MAX_BODY_BYTES` (by Content-Length
    before reading, else while reading)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise RequestError("body", f"Request body of {length} bytes refused: at most "
                                   f"{MAX_BODY_BYTES} bytes.", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise RequestError("body", f"Request body over {MAX_BODY_BYTES} bytes refused.",
                               status=413)
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError("body", f"The body is not JSON ({e}).") from None


def _route(handler):
    """Wraps an endpoint: a `RequestError` becomes its JSON error response."""
    async def endpoint(request):
        try:
            return await handler(request, request.app.state.cwgan)
        except RequestError as e:
            return _error(e.status, e.field, e.message)
    return endpoint


def _check_name(request, state):
    name = request.path_params["name"]
    if name != state.model_name:
        raise RequestError("name", f"Servable not found for request: model {name!r}; this "
                                   f"server serves {state.model_name!r}.", status=404)


async def page(request, state):
    return HTMLResponse(state.page)


async def health(request, state):
    model = state.model
    return JSONResponse({
        "status": "ok", "generator_iterations": model.info.get("generator_iterations"),
        "reloads": state.reloads, "requests": state.requests, "batching": state.batching,
        "batches": state.batches, "batched_images": state.batched_images})


async def sample_json(request, state):
    model = state.model  # this request's generator, even if a newer one is swapped in
    labels, seed, fmt = sample_args(await json_body(request), model.info)
    seed, noise = _noise(seed, len(labels), model.info["latent_dim"])
    images = await state.generate(model, noise, labels)
    content = await anyio.to_thread.run_sync(_images_json, images, fmt)
    names = model.info["class_names"]
    return JSONResponse({"labels": labels.tolist(), "class_names": [names[i] for i in labels],
                         "seed": seed, "format": fmt, "images": content,
                         "generator_iterations": model.info.get("generator_iterations")})


async def sample_png(request, state):
    model = state.model
    query = dict(request.query_params)
    query.setdefault("n", "16")
    query.setdefault("seed", "0")
    labels, seed, _ = sample_args(query, model.info)
    seed, noise = _noise(seed, len(labels), model.info["latent_dim"])
    images = await state.generate(model, noise, labels)
    return Response(png_bytes(_row(images)), media_type="image/png")


async def morph(request, state):
    model = state.model
    label_from, label_to, steps, n, seed, fmt = morph_args(await json_body(request),
                                                           model.info)
    seed, noise = _noise(seed, n, model.info["latent_dim"])
    try:
        grid = await anyio.to_thread.run_sync(morph_images, model.generator, noise,
                                              label_from, label_to, steps)
    except ValueError as e:  # a generator whose label does not go through an embedding
        raise RequestError("from_label", str(e)) from None
    rows = await anyio.to_thread.run_sync(
        lambda: [_images_json(row, fmt) for row in grid])
    return JSONResponse({"from_label": label_from, "to_label": label_to, "steps": steps,
                         "seed": seed, "format": fmt, "images": rows})


async def model_status(request, state):
    _check_name(request, state)
    model = state.model
    return JSONResponse({
        "model_version_status": [{
            "version": str(model.info.get("generator_iterations") or 0),
            "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}],
        "metadata": model.metadata(state.model_name)})


async def model_metadata(request, state):
    _check_name(request, state)
    model = state.model
    shape = model.metadata(state.model_name)["output_shape"]
    return JSONResponse({
        "model_spec": {"name": state.model_name,
                       "version": str(model.info.get("generator_iterations") or 0),
                       "signature_name": ""},
        "metadata": {
            "signature_def": {"serving_default": {
                "inputs": {"label": {"dtype": "DT_INT32", "shape": [-1]},
                           "noise": {"dtype": "DT_FLOAT",
                                     "shape": [-1, model.info["latent_dim"]]}},
                "outputs": {"images": {"dtype": "DT_FLOAT", "shape": [-1] + shape}}}},
            "cwgan": model.metadata(state.model_name)}})


async def predict(request, state):
    _check_name(request, state)
    model = state.model
    noise, labels, rows = predict_args(await json_body(request), model.info)
    images = await state.generate(model, noise, labels)
    values = await anyio.to_thread.run_sync(images.tolist)
    return JSONResponse({"predictions": values} if rows else {"outputs": values})


async def _not_found(request, exc):
    return _error(exc.status_code, "path", f"{request.method} {request.url.path}: "
                                           f"{exc.detail}.")


async def _internal_error(request, exc):
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, "server", f"{type(exc).__name__} while answering {request.method} "
                                 f"{request.url.path}; the server goes on (see its log).")


def run_name(checkpoint_dir):
    """The run's name: the checkpoint directory's own name (`runs/mine` -> "mine"), with
    any character a route cannot carry as "_"; "cwgan" for a nameless one."""
    name = os.path.basename(os.path.normpath(os.path.abspath(checkpoint_dir)))
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "cwgan"


def page_title(model_name, info):
    """What the page serves, in words: the name, the data and the classes."""
    names = list(info["class_names"])
    classes = [names[c] for c in info["classes"]]
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    data = info.get("dataset") or "images"
    return f"{model_name}: a conditional WGAN of {data} ({len(classes)} classes: {shown})"


def make_app(checkpoint_dir, model_name=None, batching=True, reload_seconds=2.0):
    """The Starlette app serving the generator in `checkpoint_dir` (loaded now, so a
    missing or broken one fails here, before the server listens).

    Args:
        checkpoint_dir: a directory holding `generator.keras` and `generator.json`.
        model_name: the `<name>` in the TensorFlow Serving routes, shown on the page.
            Defaults to the run's name (`run_name(checkpoint_dir)`).
        batching: gather concurrent requests into one generator call.
        reload_seconds: how often to look for a newer generator; 0 never reloads.
    """
    model_name = model_name or run_name(checkpoint_dir)
    state = ServerState(LoadedGenerator(checkpoint_dir), model_name, batching)
    reloader = Reloader(state, reload_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.get_running_loop().create_task(state.batcher.run()) \
            if state.batcher else None
        reloader.start()
        try:
            yield
        finally:
            reloader.stop()
            if task is not None:
                task.cancel()

    routes = [
        Route("/", _route(page), methods=["GET"]),
        Route("/healthz", _route(health), methods=["GET"]),
        Route("/api/sample", _route(sample_json), methods=["POST"]),
        Route("/api/sample.png", _route(sample_png), methods=["GET"]),
        Route("/api/morph", _route(morph), methods=["POST"]),
        Route("/v1/models/{name}:predict", _route(predict), methods=["POST"]),
        Route("/v1/models/{name}/metadata", _route(model_metadata), methods=["GET"]),
        Route("/v1/models/{name}", _route(model_status), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: _not_found, 405: _not_found,
                                        Exception: _internal_error})
    app.state.cwgan = state
    app.state.reloader = reloader
    return app

