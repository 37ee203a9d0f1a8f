"""Encoders: the text-embedding backends (torch, onnx-int8, static) and long-text handling."""
