"""Visitor capture: the script (/capture.js), its endpoint, and the visitor → contact rules."""
