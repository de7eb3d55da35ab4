"""gunicorn settings for the benchmark: each worker notes when its app is loaded, so the
harness starts timing only once every worker can answer (gunicorn -c bench/gunicorn_ready.py)."""
import os


def post_worker_init(worker):
    with open(os.environ["BENCH_READY_FILE"], "a", encoding="utf-8") as ready:
        ready.write(f"{worker.pid}\n")
