"""The harness's command-line tools besides train.py (run with python -m harness.tools.X)."""
