"""gunicorn settings: bind from CDSW_APP_HOST/CDSW_APP_PORT (default 127.0.0.1:8080).

Threads, not many processes: runs started through the API execute on a thread of the
process that accepted them, and the status cache is per process."""
import os

bind = f"{os.environ.get('CDSW_APP_HOST', '127.0.0.1')}:{os.environ.get('CDSW_APP_PORT', '8080')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 300  # adding a node waits until it is ALIVE
accesslog = "-"
# never log the Authorization header (the default format does not; keep it that way)
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
