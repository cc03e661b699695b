"""Data: one sequence layer for training and evaluation, dataset readers, sampling."""
