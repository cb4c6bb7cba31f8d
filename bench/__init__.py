"""The codexd benchmark (``python -m bench``): codexd against a loopback HTTPS fake backend, measured
side by side with the fake reached directly. See ``bench/run.py``."""
