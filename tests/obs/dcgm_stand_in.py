"""dcgm_stand_in.py - a stand-in for NVIDIA's dcgm-exporter, for test_prometheus.sh.

Usage: dcgm_stand_in.py PORT. Answers GET /metrics with the DCGM_FI_DEV_* series that the
dashboard's GPU panels and the GPU rules read, named, typed and labelled as dcgm-exporter's
default counters (etc/default-counters.csv) are, for two GPUs of one host. There is no GPU
on the test machines; on a real cluster these series come from capstan's own /metrics (read
from NVML, see docs/observability.md) or from dcgm-exporter scraped as a job of its own.
The values only have to be plausible: the test checks that every expression returns data.
"""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SERIES = [
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", [37, 82]),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", [20480, 131072]),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", [122880, 12288]),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", [212.5, 655.0]),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", [41, 67]),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", [0, 0]),
]


def text():
    out = []
    for name, kind, help_, values in SERIES:
        out += ["# HELP %s %s" % (name, help_), "# TYPE %s %s" % (name, kind)]
        for gpu, v in enumerate(values):
            out.append('%s{gpu="%d",UUID="GPU-0000000%d-stand-in",device="nvidia%d",'
                       'modelName="NVIDIA H200",Hostname="node-1"} %s' % (name, gpu, gpu, gpu, v))
    return ("\n".join(out) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = text() if self.path == "/metrics" else b"not found\n"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
