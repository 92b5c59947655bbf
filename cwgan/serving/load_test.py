"""The load test's library (`python -m cwgan.bench_serve`): a server in its own process,
the images each request must get, and concurrent clients that send and check them."""

import base64
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cwgan.sampling.sample import generate_unit, load_generator, seeded_noise

MODES = ("batching", "nobatching")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(checkpoint_dir, batching, timeout=180.0):
    """`(process, port)`: `python -m cwgan.serve` in its own process, answering /healthz."""
    port = _free_port()
    command = [sys.executable, "-m", "cwgan.serve", f"--port={port}", "--reload_seconds=0",
               "--batching" if batching else "--nobatching",
               f"--checkpoint_dir={checkpoint_dir}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}: "
                               f"{process.stderr.read()[-2000:]}")
        try:
            status, _ = _request(http.client.HTTPConnection("127.0.0.1", port, timeout=5),
                                 "GET", "/healthz")
            if status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the server did not answer on port {port} within {timeout:.0f} s")


def _request(connection, method, path, body=None):
    data = None if body is None else json.dumps(body)
    connection.request(method, path, body=data,
                       headers={"Content-Type": "application/json"} if data else {})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def expected_pixels(checkpoint_dir, requests, n):
    """`(classes, pixels)`: request i's class, and its images as 8-bit pixels, computed
    here the way `cwgan.sample` draws them."""
    generator, info = load_generator(checkpoint_dir)
    classes = list(info["classes"])
    labels = [classes[i % len(classes)] for i in range(requests)]
    noise = np.concatenate([seeded_noise(i, n, info["latent_dim"]) for i in range(requests)])
    images = generate_unit(generator, noise, np.repeat(np.asarray(labels, np.int32), n))
    pixels = np.round(images * 255).astype(np.int16)
    return labels, pixels.reshape((requests, n) + pixels.shape[1:])


def _decode(url):
    import tensorflow as tf
    image = tf.io.decode_png(base64.b64decode(url.split(",", 1)[1])).numpy()
    return (image[..., 0] if image.shape[-1] == 1 else image).astype(np.int16)


def run_load(port, labels, pixels, clients, max_seconds):
    """Sends request i (class `labels[i]`, seed i, `len(pixels[i])` PNGs) for every i,
    from `clients` threads with a keep-alive connection each. Returns the latencies (s)
    of answered requests, counts of errors (no answer, or not 200), wrong answers, and
    requests not sent before `max_seconds`, and the wall time."""
    total, n = len(labels), pixels.shape[1]
    next_index, lock = [0], threading.Lock()
    latencies, counts = [], {"errors": 0, "wrong": 0, "not_sent": 0}
    deadline = time.monotonic() + max_seconds

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total:
                break
            if time.monotonic() > deadline:
                with lock:
                    counts["not_sent"] += 1
                continue
            start = time.perf_counter()
            status = body = None
            # A keep-alive connection the server closed while idle fails at once; like
            # any HTTP client's pool, retry such a request once on a new connection.
            for attempt in range(2):
                try:
                    status, body = _request(connection, "POST", "/api/sample",
                                            {"label": labels[i], "n": n, "seed": i})
                    break
                except (OSError, http.client.HTTPException, ValueError) as e:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    if not isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                          ConnectionResetError)):
                        break
            elapsed = time.perf_counter() - start
            with lock:
                if status != 200:
                    counts["errors"] += 1
                    continue
                latencies.append(elapsed)
            got = np.stack([_decode(url) for url in body["images"]])
            right = (body["labels"] == [labels[i]] * n and got.shape == pixels[i].shape
                     and int(np.abs(got - pixels[i]).max()) <= 1)
            if not right:
                with lock:
                    counts["wrong"] += 1
        connection.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return latencies, counts, time.perf_counter() - start


def measure(mode, checkpoint_dir, labels, pixels, clients, max_seconds):
    """One mode's figures (a dict), the server started and stopped around them."""
    process, port = start_server(checkpoint_dir, batching=mode == "batching")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(min(8, len(labels))):  # warm-up: first calls, threads, caches
            _request(connection, "POST", "/api/sample", {"label": labels[i], "n": 1})
        _, before = _request(connection, "GET", "/healthz")
        connection.close()
        latencies, counts, wall = run_load(port, labels, pixels, clients, max_seconds)
        # A new connection: uvicorn closes one idle for 5 s (its keep-alive timeout).
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        _, after = _request(connection, "GET", "/healthz")
        connection.close()
    finally:
        process.terminate()
        process.wait(60)
    answered = len(latencies)
    batches = after["batches"] - before["batches"]
    return {
        "mode": mode, "requests": len(labels), "clients": clients,
        "images_per_request": int(pixels.shape[1]), "answered": answered, **counts,
        "seconds": round(wall, 2),
        "requests_per_second": round(answered / wall, 1) if wall else None,
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1) if answered else None,
        "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 1) if answered else None,
        "mean_batch_images": (round((after["batched_images"] - before["batched_images"])
                                    / batches, 1) if batches else None),
    }
