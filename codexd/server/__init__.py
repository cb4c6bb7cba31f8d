"""The HTTP server: the only code that imports ``tornado.web``."""
