"""Experiments: one thin module each, run as ``python -m experiments.<name>``.

Each turns flags into library calls and writes or prints its outputs; the mathematics lives in
:mod:`mlwork`.
"""
