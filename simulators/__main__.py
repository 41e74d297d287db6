"""``python -m simulators NAME [--host H] [--port N]``: runs one simulator until interrupted."""
import argparse
import importlib
import os
import signal
import sys
import threading

from . import SIMULATORS


def load(name: str):
    module_name, _, class_name = SIMULATORS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    parser.add_argument("name", choices=sorted(SIMULATORS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # Simulators that reuse the DTE core or the product's own signing helpers need Django settings.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billmysales.settings.local")
    simulator = load(args.name)(host=args.host, port=args.port).start()
    print(f"{args.name} simulator at {simulator.url}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
